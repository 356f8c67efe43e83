# The bootstrap variants the golden and Envoy-API tests render. Sourced by
# tests/e2e/bootstrap_golden.sh and bootstrap_envoy_api.sh after lib.sh.
# render_variant NAME OUT: renders variant NAME into OUT with a clean,
# fixed environment (env -i), so the output depends on nothing else.
VARIANTS="sidecar router sidecar-tracing router-tracing override-listener
ipv6 metadata proxyconfig flags-over-proxyconfig mesh-config istio-flags"

variant_inputs() {
	mkdir -p "$T/certs" "$T/in"
	printf 'CERT\n' >"$T/certs/cert-chain.pem"
	printf 'KEY\n' >"$T/certs/key.pem"
	cat >"$T/in/override.yaml" <<'YAML'
static_resources:
  listeners:
  - name: extra
    address:
      socket_address: { address: "$(HOST_IP)", port_value: 15999 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: extra
          cluster: agent
admin:
  profile_path: /var/lib/istio/data/envoy.prof
YAML
	cat >"$T/in/mesh.yaml" <<'YAML'
# A mesh config as istiod's ConfigMap holds it.
defaultConfig:
  discoveryAddress: istiod.mesh.svc:15012
  drainDuration: 30s
  concurrency: 4
  tracing:
    zipkin:
      address: zipkin.mesh:9411
    sampling: 1.0
  proxyMetadata:
    ISTIO_META_DNS_CAPTURE: "true"
  holdApplicationUntilProxyStarts: true
trustDomain: cluster.local
YAML
}

render_variant() {
	local name=$1 out=$2 role=sidecar
	local -a env=(PATH="$PATH" POD_NAME=productpage-v1-1 POD_NAMESPACE=shop
		INSTANCE_IP=10.1.2.3 SERVICE_ACCOUNT=productpage
		ISTIO_META_CLUSTER_ID=east)
	local -a args=(--configPath /etc/istio/proxy --certDir "$T/certs")
	case $name in
	sidecar) ;;
	router) role=router ;;
	sidecar-tracing) args+=(--zipkinAddress zipkin.istio-system:9411) ;;
	router-tracing) role=router
		args+=(--zipkinAddress zipkin.istio-system:9411) ;;
	override-listener) env+=(ISTIO_BOOTSTRAP_OVERRIDE="$T/in/override.yaml"
		HOST_IP=192.168.7.7) ;;
	ipv6) env=("${env[@]/INSTANCE_IP=*/INSTANCE_IP=fd00::1,fd00::2}") ;;
	metadata) env+=(ISTIO_META_APP_CONTAINERS=web,sidecar
		ISTIO_META_WORKLOAD_NAME=productpage-v1
		'ISTIO_METAJSON_LABELS={"LABELS":{"app":"productpage","version":"v1"}}'
		'ISTIO_METAJSON_ANNOTATIONS={"ANNOTATIONS":{"a/b":"c"},"MESH_ID":"m1"}'
		'PROXY_CONFIG={"proxyMetadata":{"ISTIO_META_DNS_CAPTURE":"true","ISTIO_META_WORKLOAD_NAME":"overridden-by-env","OTHER":"x"}}') ;;
	proxyconfig) env+=('PROXY_CONFIG={"drainDuration":"20s","concurrency":3,"proxyAdminPort":15100,"tracing":{"zipkin":{"address":"zipkin.pc:9411"}},"serviceCluster":"pc-cluster","unknownField":1}') ;;
	flags-over-proxyconfig)
		env+=('PROXY_CONFIG={"proxyAdminPort":15100,"statusPort":15120,"drainDuration":"20s","discoveryAddress":"pc:15012"}')
		args+=(--proxyAdminPort 15200 --drainDuration 25s) ;;
	mesh-config) args+=(--meshConfig "$T/in/mesh.yaml")
		env+=('PROXY_CONFIG={"concurrency":5}') ;;
	istio-flags) args+=(--domain shop.svc.cluster.local
		--serviceCluster productpage.shop --drainDuration 45s
		--parentShutdownDuration 1m0s
		--discoveryAddress istiod.istio-system.svc:15012
		--zipkinAddress zipkin.istio-system:9411 --proxyLogLevel=warning
		--proxyComponentLogLevel=misc:error --connectTimeout 10s
		--proxyAdminPort 15000 --concurrency 2
		--controlPlaneAuthPolicy NONE --dnsRefreshRate 300s
		--statusPort 15020 --trust-domain=cluster.local
		--controlPlaneBootstrap=false) ;;
	*) echo "unknown variant $name" >&2; return 2 ;;
	esac
	env -i "${env[@]}" "$AGENT" bootstrap "$role" "${args[@]}" --output "$out"
}
