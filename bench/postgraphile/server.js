// PostGraphile 4 over one tenant schema, as that schema's owner: the peer of bench/graphql_list.py.
// DATABASE_URL, SCHEMA and PORT come from the environment; GET /healthz answers for the bench's wait.
"use strict";

const http = require("http");
const { postgraphile } = require("postgraphile");

const handler = postgraphile(process.env.DATABASE_URL, process.env.SCHEMA, {
  disableDefaultMutations: true,
  disableQueryLog: true,
  ignoreRBAC: true,
  retryOnInitFail: false,
  watchPg: false,
  enableQueryBatching: false,
  setofFunctionsContainNulls: false,
  // As a production deployment would run it: no GraphiQL, no extended errors.
  graphiql: false,
  extendedErrors: [],
});

http
  .createServer((req, res) => {
    if (req.url === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"status":"ok"}');
      return;
    }
    handler(req, res);
  })
  .listen(Number(process.env.PORT), "127.0.0.1");
