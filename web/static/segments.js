// Draws a segment's breakdown as a bar chart with ECharts from its JSON endpoint; the page shows the
// same figures as a table, so nothing is lost without JavaScript. Redrawn when htmx swaps the breakdown.
(function () {
  "use strict";

  function draw(element) {
    var source = element.dataset.segmentChart;
    if (!source || element.dataset.drawnFrom === source) { return; }
    fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("segment breakdown: HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        var chart = window.echarts.getInstanceByDom(element) ||
          window.echarts.init(element, null, { locale: element.dataset.locale, renderer: "canvas" });
        var rows = data.slices.slice(0, 20);
        chart.setOption({
          tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
          grid: { left: 140, right: 24, top: 16, bottom: 32 },
          xAxis: { type: "value", minInterval: 1 },
          yAxis: { type: "category", inverse: true, data: rows.map(function (s) { return s.label; }) },
          series: [{ name: data.title, type: "bar", barMaxWidth: 28, itemStyle: { color: "#0b5cad" },
            data: rows.map(function (s) { return s.count; }) }]
        }, true);
        element.dataset.drawnFrom = source;
        element.dataset.drawn = "true";
      })
      .catch(function (error) { element.dataset.error = String(error); });
  }

  function drawAll() {
    if (!window.echarts) { return; }
    document.querySelectorAll("[data-segment-chart]").forEach(draw);
  }

  // After an htmx-boosted navigation the two scripts load in no fixed order: wait for ECharts.
  function whenReady() {
    if (window.echarts) { drawAll(); return; }
    var tag = document.querySelector('script[src$="echarts.min.js"]');
    if (tag) { tag.addEventListener("load", drawAll, { once: true }); }
  }

  if (!window.tenantcrmSegmentCharts) {
    window.tenantcrmSegmentCharts = true;
    document.addEventListener("htmx:afterSettle", drawAll);
    window.addEventListener("resize", function () {
      document.querySelectorAll("[data-segment-chart]").forEach(function (element) {
        var chart = window.echarts && window.echarts.getInstanceByDom(element);
        if (chart) { chart.resize(); }
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", whenReady, { once: true });
  } else {
    whenReady();
  }
})();
