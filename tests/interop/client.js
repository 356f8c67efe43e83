// The interop test's client: @grpc/grpc-js-xds, bootstrapped (GRPC_XDS_BOOTSTRAP)
// against the agent's XDS socket, resolves xds:///TARGET and calls it.
//   node client.js TARGET
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');
require('@grpc/grpc-js-xds').register();

const target = process.argv[2];
const def = loader.loadSync(path.join(__dirname, 'echo.proto'));
const Echo = grpc.loadPackageDefinition(def).interop.Echo;
const client = new Echo(`xds:///${target}`, grpc.credentials.createInsecure());
const deadline = new Date(Date.now() + 30000);
client.Say({ text: 'hello through the relay' }, { deadline }, (err, reply) => {
  if (err) {
    console.error(`RPC failed: ${err.code} ${err.details}`);
    process.exit(1);
  }
  console.log(`reply: ${reply.text} from ${reply.backend}`);
  client.close();
  process.exit(0);
});
