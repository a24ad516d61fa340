package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"cordon/config"
)

// The Kubernetes manifests are checked offline: every document parses,
// has the fields Kubernetes requires, and agrees with the others and with
// the config it ships (ports, probes, mounts, secrets, etcd addresses,
// per-node environment). No schema download is possible here, so the
// required fields are spelled out below.

type manifest map[string]any

// obj walks a path of map keys and list indexes.
func (m manifest) get(path ...any) any {
	var cur any = map[string]any(m)
	for _, p := range path {
		switch k := p.(type) {
		case string:
			mm, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = mm[k]
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			cur = l[k]
		}
	}
	return cur
}

func (m manifest) str(path ...any) string { s, _ := m.get(path...).(string); return s }
func (m manifest) list(path ...any) []any { l, _ := m.get(path...).([]any); return l }
func (m manifest) id() string             { return m.str("kind") + "/" + m.str("metadata", "name") }

func sub(v any) manifest {
	m, _ := v.(map[string]any)
	return manifest(m)
}

// loadManifests parses every file listed in kustomization.yaml.
func loadManifests(t *testing.T) (map[string]manifest, []string) {
	t.Helper()
	var kust struct {
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
	}
	b, err := os.ReadFile("kubernetes/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &kust); err != nil || kust.Namespace != "cordon" {
		t.Fatalf("kustomization.yaml: %v (namespace %q)", err, kust.Namespace)
	}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(kust.Resources, base) {
			t.Errorf("%s is not listed in kustomization.yaml", base)
		}
	}
	out := map[string]manifest{}
	for _, r := range kust.Resources {
		b, err := os.ReadFile(filepath.Join("kubernetes", r))
		if err != nil {
			t.Fatalf("kustomization lists %s: %v", r, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var raw map[string]any // not manifest: nested maps would take its type
			err := dec.Decode(&raw)
			m := manifest(raw)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", r, err)
			}
			if m == nil {
				continue
			}
			if m.str("apiVersion") == "" || m.str("kind") == "" || m.str("metadata", "name") == "" {
				t.Fatalf("%s: a document without apiVersion, kind or metadata.name: %v", r, m)
			}
			if _, dup := out[m.id()]; dup {
				t.Fatalf("%s defined twice", m.id())
			}
			out[m.id()] = m
		}
	}
	return out, kust.Resources
}

func TestKubernetesManifests(t *testing.T) {
	ms, _ := loadManifests(t)
	for _, id := range []string{"Namespace/cordon", "ConfigMap/cordon-config", "Secret/cordon-peer", "Secret/cordon-etcd-client",
		"Secret/etcd-tls", "Secret/cordon-cameras", "Service/cordon-peers", "Service/cordon", "Service/etcd",
		"StatefulSet/cordon", "StatefulSet/etcd", "PodDisruptionBudget/cordon", "PodDisruptionBudget/etcd"} {
		if ms[id] == nil {
			t.Errorf("missing %s", id)
		}
	}
	for id, m := range ms {
		if want, ok := map[string]string{"StatefulSet": "apps/v1", "PodDisruptionBudget": "policy/v1", "Service": "v1",
			"ConfigMap": "v1", "Secret": "v1", "Namespace": "v1"}[m.str("kind")]; !ok || m.str("apiVersion") != want {
			t.Errorf("%s: apiVersion %q", id, m.str("apiVersion"))
		}
		if m.str("kind") == "StatefulSet" || m.str("kind") == "PodDisruptionBudget" || m.str("kind") == "Service" {
			checkSelector(t, ms, m)
		}
		if m.str("kind") == "StatefulSet" {
			checkPodSpec(t, ms, m)
		}
	}
	// Placeholders only: cordon or etcd refuse every secret until replaced.
	for id, m := range ms {
		if m.str("kind") != "Secret" {
			continue
		}
		data, _ := m.get("stringData").(map[string]any)
		if len(data) == 0 || m.get("data") != nil {
			t.Errorf("%s: want placeholder stringData only", id)
		}
		for k, v := range data {
			if v != "CHANGE-ME" {
				t.Errorf("%s: %s is not the CHANGE-ME placeholder: a real secret must never be committed", id, k)
			}
		}
	}
	if len("CHANGE-ME") >= config.MinPeerKeyBytes {
		t.Fatal("the peer key placeholder would be accepted as a key")
	}
}

// checkSelector: selectors match the pods they are meant for.
func checkSelector(t *testing.T, ms map[string]manifest, m manifest) {
	t.Helper()
	var sel map[string]any
	switch m.str("kind") {
	case "Service":
		sel, _ = m.get("spec", "selector").(map[string]any)
	default:
		sel, _ = m.get("spec", "selector", "matchLabels").(map[string]any)
	}
	name, _ := sel["app.kubernetes.io/name"].(string)
	target := ms["StatefulSet/"+name]
	if target == nil {
		t.Errorf("%s selects app.kubernetes.io/name=%q: no such StatefulSet", m.id(), name)
		return
	}
	labels, _ := target.get("spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("%s: selector %s=%v does not match %s's pod labels %v", m.id(), k, v, target.id(), labels)
		}
	}
}

// checkPodSpec: governing service, mounts, volumes and referenced objects.
func checkPodSpec(t *testing.T, ms map[string]manifest, m manifest) {
	t.Helper()
	if svc := ms["Service/"+m.str("spec", "serviceName")]; svc == nil || svc.str("spec", "clusterIP") != "None" {
		t.Errorf("%s: serviceName %q is not a headless Service", m.id(), m.str("spec", "serviceName"))
	}
	pod := sub(m.get("spec", "template", "spec"))
	volumes := map[string]manifest{}
	for _, v := range pod.list("volumes") {
		vm := sub(v)
		volumes[vm.str("name")] = vm
		if s := vm.str("secret", "secretName"); s != "" && ms["Secret/"+s] == nil {
			t.Errorf("%s: volume %s uses undefined Secret %s", m.id(), vm.str("name"), s)
		}
		if c := vm.str("configMap", "name"); c != "" && ms["ConfigMap/"+c] == nil {
			t.Errorf("%s: volume %s uses undefined ConfigMap %s", m.id(), vm.str("name"), c)
		}
	}
	for _, v := range m.list("spec", "volumeClaimTemplates") {
		volumes[sub(v).str("metadata", "name")] = sub(v)
	}
	for _, c := range pod.list("containers") {
		cm := sub(c)
		if cm.str("image") == "" || cm.str("name") == "" {
			t.Errorf("%s: a container without name or image", m.id())
		}
		for _, vmnt := range cm.list("volumeMounts") {
			if volumes[sub(vmnt).str("name")] == nil {
				t.Errorf("%s: mount of undefined volume %s", m.id(), sub(vmnt).str("name"))
			}
		}
		if cm.get("securityContext", "readOnlyRootFilesystem") != true || cm.get("securityContext", "allowPrivilegeEscalation") != false {
			t.Errorf("%s: container %s is not read-only and unprivileged", m.id(), cm.str("name"))
		}
	}
}

// container returns the StatefulSet's first container.
func container(ms map[string]manifest, sts string) manifest {
	return sub(ms["StatefulSet/"+sts].get("spec", "template", "spec", "containers", 0))
}

func ports(c manifest) map[string]int {
	out := map[string]int{}
	for _, p := range c.list("ports") {
		pm := sub(p)
		n, _ := pm.get("containerPort").(int)
		out[pm.str("name")] = n
	}
	return out
}

func port(t *testing.T, listen string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(listen)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("listen %q", listen)
	}
	return n
}

// TestKubernetesConfigAgrees: the shipped config is valid (but for the
// secret files, which exist only in the pods), and the manifests agree with
// it: ports, probes, mounted paths, etcd addresses, per-node environment.
func TestKubernetesConfigAgrees(t *testing.T) {
	ms, _ := loadManifests(t)
	yml := ms["ConfigMap/cordon-config"].str("data", "cordon.yaml")
	path := filepath.Join(t.TempDir(), "cordon.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CORDON_CLUSTER_NODE_ID", "cordon-0")
	t.Setenv("CORDON_CLUSTER_ADVERTISE", "192.0.2.11")
	t.Setenv("CORDON_WEBRTC_HOST_IPS", "192.0.2.11")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("configmap's cordon.yaml: %v", err)
	}
	for _, fe := range cfg.Validate() {
		// The mounted secrets are not here; everything else must be valid.
		if !strings.Contains(fe.Msg, "cannot read /etc/cordon/") {
			t.Errorf("configmap's cordon.yaml: %v", fe)
		}
	}
	c := container(ms, "cordon")
	p := ports(c)
	if p["http"] != port(t, cfg.HTTP.Listen) || p["rtsp"] != port(t, cfg.RTSP.Listen) ||
		p["webrtc-udp"] != port(t, cfg.WebRTC.UDPListen) || p["webrtc-tcp"] != port(t, cfg.WebRTC.TCPListen) {
		t.Errorf("container ports %v disagree with the config's listen addresses", p)
	}
	for _, svc := range []string{"Service/cordon", "Service/cordon-peers"} {
		for _, sp := range ms[svc].list("spec", "ports") {
			spm := sub(sp)
			n, _ := spm.get("port").(int)
			if want := p[spm.str("targetPort")]; want == 0 || n != want {
				t.Errorf("%s port %s: %d -> %s (container %d)", svc, spm.str("name"), n, spm.str("targetPort"), want)
			}
		}
	}
	// WHEP PATCH/DELETE and OIDC callbacks must reach the node that began them
	if ms["Service/cordon"].str("spec", "sessionAffinity") != "ClientIP" {
		t.Error("Service/cordon: sessionAffinity must be ClientIP (WHEP sessions and OIDC sign-ins are node-local)")
	}
	for _, probe := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
		if c.str(probe, "httpGet", "path") != "/healthz" || c.str(probe, "httpGet", "port") != "http" {
			t.Errorf("%s must GET /healthz on the http port", probe)
		}
		if selfSigned := slices.Contains(c.list("args"), "--self-signed"); selfSigned != (c.str(probe, "httpGet", "scheme") == "HTTPS") {
			t.Errorf("%s scheme %q does not match --self-signed", probe, c.str(probe, "httpGet", "scheme"))
		}
	}
	env := map[string]string{}
	for _, e := range c.list("env") {
		em := sub(e)
		env[em.str("name")] = em.str("valueFrom", "fieldRef", "fieldPath")
	}
	if env["CORDON_CLUSTER_NODE_ID"] != "metadata.name" || env["CORDON_CLUSTER_ADVERTISE"] != "status.hostIP" || env["CORDON_WEBRTC_HOST_IPS"] != "status.hostIP" {
		t.Errorf("per-node environment: %v", env)
	}
	if cfg.Cluster.NodeID != "cordon-0" || cfg.Cluster.Advertise != "192.0.2.11" {
		t.Errorf("environment overrides not applied: %+v", cfg.Cluster)
	}
	checkMountedFiles(t, c, cfg)
	checkEtcdEndpoints(t, ms, cfg)
}

// checkMountedFiles: each file the config names lives under a mount.
func checkMountedFiles(t *testing.T, c manifest, cfg *config.Config) {
	t.Helper()
	mounts := map[string]string{}
	for _, v := range c.list("volumeMounts") {
		vm := sub(v)
		mounts[vm.str("mountPath")] = vm.str("name")
	}
	files := []string{cfg.Cluster.PeerKeyFile, cfg.Cluster.EtcdTLS.CA, cfg.Cluster.EtcdTLS.Cert, cfg.Cluster.EtcdTLS.Key, cfg.StateDir, cfg.Audit.Path}
	for _, cam := range cfg.Cameras {
		if cam.PasswordFile != "" {
			files = append(files, cam.PasswordFile)
		}
	}
	for _, f := range files {
		mounted := false
		for mp := range mounts {
			if f == mp || strings.HasPrefix(f, mp+"/") {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("%s is not under any volume mount %v", f, mounts)
		}
	}
}

// checkEtcdEndpoints: the config's etcd endpoints are the etcd
// StatefulSet's pods behind its headless service, on its client port.
func checkEtcdEndpoints(t *testing.T, ms map[string]manifest, cfg *config.Config) {
	t.Helper()
	sts := ms["StatefulSet/etcd"]
	replicas, _ := sts.get("spec", "replicas").(int)
	client := ports(container(ms, "etcd"))["client"]
	var want []string
	for i := range replicas {
		want = append(want, fmt.Sprintf("https://etcd-%d.%s.cordon.svc:%d", i, sts.str("spec", "serviceName"), client))
	}
	if !slices.Equal(cfg.Cluster.EtcdEndpoints, want) {
		t.Errorf("cluster.etcd_endpoints = %v, want %v", cfg.Cluster.EtcdEndpoints, want)
	}
	args := strings.Join(func() []string {
		var s []string
		for _, a := range container(ms, "etcd").list("command") {
			s = append(s, fmt.Sprint(a))
		}
		return s
	}(), " ")
	for _, flag := range []string{"--client-cert-auth", "--trusted-ca-file=", "--peer-client-cert-auth", "--auto-compaction-retention=",
		fmt.Sprintf("--listen-client-urls=https://0.0.0.0:%d", client)} {
		if !strings.Contains(args, flag) {
			t.Errorf("etcd lacks %s", flag)
		}
	}
	for i := range replicas {
		if !strings.Contains(args, fmt.Sprintf("etcd-%d=https://etcd-%d.etcd.cordon.svc:2380", i, i)) {
			t.Errorf("--initial-cluster lacks member etcd-%d", i)
		}
	}
}
