// Writes the test control plane's resources file for the interop test:
// a real Listener (an API listener with an HttpConnectionManager using RDS),
// RouteConfiguration, Cluster (EDS) and ClusterLoadAssignment, encoded with
// protobufjs from the Envoy .proto files that @grpc/grpc-js-xds ships.
//   node xds_resources.js OUT.json TARGET BACKEND_PORT
'use strict';
const path = require('path');
const fs = require('fs');
const protobuf = require('protobufjs');

const [out, target, port] = process.argv.slice(2);
const xdsDir = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const includes = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate']
  .map((d) => path.join(xdsDir, 'deps', d));
const commonDir = path.join(path.dirname(require.resolve('protobufjs/package.json')));

const root = new protobuf.Root();
root.resolvePath = (origin, target) => {
  for (const dir of includes) {
    const p = path.join(dir, target);
    if (fs.existsSync(p)) return p;
  }
  const common = path.join(commonDir, target);
  if (fs.existsSync(common)) return common;
  return protobuf.util.path.resolve(origin, target);
};
root.loadSync([
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
], { keepCase: true });

function encode(typeName, obj) {
  // fromObject converts enum names and nested objects; verify() would
  // want numbers for enums.
  const t = root.lookupType(typeName);
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}
function any(typeName, obj) {
  return { type_url: `type.googleapis.com/${typeName}`, value: encode(typeName, obj) };
}

const router = any('envoy.extensions.filters.http.router.v3.Router', {});
const hcm = any('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', {
  rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: 'echo-route' },
  http_filters: [{ name: 'router', typed_config: router }],
});
const listener = encode('envoy.config.listener.v3.Listener', {
  name: target, api_listener: { api_listener: hcm },
});
const route = encode('envoy.config.route.v3.RouteConfiguration', {
  name: 'echo-route',
  virtual_hosts: [{ name: 'echo', domains: ['*'],
    routes: [{ match: { prefix: '' }, route: { cluster: 'echo-cluster' } }] }],
});
const cluster = encode('envoy.config.cluster.v3.Cluster', {
  name: 'echo-cluster', type: 'EDS', lb_policy: 'ROUND_ROBIN',
  eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: 'echo-cla' },
});
const cla = encode('envoy.config.endpoint.v3.ClusterLoadAssignment', {
  cluster_name: 'echo-cla',
  endpoints: [{ locality: { region: 'r', zone: 'z' }, load_balancing_weight: { value: 1 },
    lb_endpoints: [{ endpoint: { address: { socket_address: {
      address: '127.0.0.1', port_value: Number(port) } } } }] }],
});
const t = 'type.googleapis.com/envoy.config.';
fs.writeFileSync(out, JSON.stringify({ resources: {
  [`${t}listener.v3.Listener`]: [{ name: target, payload: listener.toString('base64') }],
  [`${t}route.v3.RouteConfiguration`]: [{ name: 'echo-route', payload: route.toString('base64') }],
  [`${t}cluster.v3.Cluster`]: [{ name: 'echo-cluster', payload: cluster.toString('base64') }],
  [`${t}endpoint.v3.ClusterLoadAssignment`]: [{ name: 'echo-cla', payload: cla.toString('base64') }],
} }, null, 1));
