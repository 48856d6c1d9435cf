"""Region codes (GB/T 2260) used for customers' region: provinces and major cities."""

from __future__ import annotations

# code: (zh-CN name, English name)
REGIONS: dict[str, tuple[str, str]] = {
    "110000": ("北京市", "Beijing"),
    "120000": ("天津市", "Tianjin"),
    "130000": ("河北省", "Hebei"),
    "140000": ("山西省", "Shanxi"),
    "150000": ("内蒙古自治区", "Inner Mongolia"),
    "210000": ("辽宁省", "Liaoning"),
    "210100": ("沈阳市", "Shenyang"),
    "210200": ("大连市", "Dalian"),
    "220000": ("吉林省", "Jilin"),
    "230000": ("黑龙江省", "Heilongjiang"),
    "310000": ("上海市", "Shanghai"),
    "320000": ("江苏省", "Jiangsu"),
    "320100": ("南京市", "Nanjing"),
    "320500": ("苏州市", "Suzhou"),
    "330000": ("浙江省", "Zhejiang"),
    "330100": ("杭州市", "Hangzhou"),
    "330200": ("宁波市", "Ningbo"),
    "340000": ("安徽省", "Anhui"),
    "340100": ("合肥市", "Hefei"),
    "350000": ("福建省", "Fujian"),
    "350100": ("福州市", "Fuzhou"),
    "350200": ("厦门市", "Xiamen"),
    "360000": ("江西省", "Jiangxi"),
    "370000": ("山东省", "Shandong"),
    "370100": ("济南市", "Jinan"),
    "370200": ("青岛市", "Qingdao"),
    "410000": ("河南省", "Henan"),
    "410100": ("郑州市", "Zhengzhou"),
    "420000": ("湖北省", "Hubei"),
    "420100": ("武汉市", "Wuhan"),
    "430000": ("湖南省", "Hunan"),
    "430100": ("长沙市", "Changsha"),
    "440000": ("广东省", "Guangdong"),
    "440100": ("广州市", "Guangzhou"),
    "440300": ("深圳市", "Shenzhen"),
    "441900": ("东莞市", "Dongguan"),
    "450000": ("广西壮族自治区", "Guangxi"),
    "460000": ("海南省", "Hainan"),
    "500000": ("重庆市", "Chongqing"),
    "510000": ("四川省", "Sichuan"),
    "510100": ("成都市", "Chengdu"),
    "520000": ("贵州省", "Guizhou"),
    "530000": ("云南省", "Yunnan"),
    "540000": ("西藏自治区", "Tibet"),
    "610000": ("陕西省", "Shaanxi"),
    "610100": ("西安市", "Xi'an"),
    "620000": ("甘肃省", "Gansu"),
    "630000": ("青海省", "Qinghai"),
    "640000": ("宁夏回族自治区", "Ningxia"),
    "650000": ("新疆维吾尔自治区", "Xinjiang"),
    "710000": ("台湾省", "Taiwan"),
    "810000": ("香港特别行政区", "Hong Kong"),
    "820000": ("澳门特别行政区", "Macao"),
}


def region_name(code: str | None, locale: str = "zh_CN") -> str:
    if not code or code not in REGIONS:
        return ""
    zh, en = REGIONS[code]
    return zh if locale.startswith("zh") else en
