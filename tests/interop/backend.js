// The interop test's backend: a @grpc/grpc-js server of interop.Echo.
//   node backend.js PORT
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const port = process.argv[2];
const def = loader.loadSync(path.join(__dirname, 'echo.proto'));
const echo = grpc.loadPackageDefinition(def).interop.Echo;
const server = new grpc.Server();
server.addService(echo.service, {
  Say: (call, cb) => cb(null, { text: call.request.text, backend: `127.0.0.1:${port}` }),
});
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) { console.error(err.message); process.exit(1); }
  console.log(`backend listening on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
