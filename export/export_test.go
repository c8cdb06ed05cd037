package export

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	appsv1 "github.com/containers/podman/v5/pkg/k8s.io/api/apps/v1"
	corev1 "github.com/containers/podman/v5/pkg/k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/policy"
	"github.com/lockstep/lockstep/quadlet"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenRoots: the test apps' grants (web uses the host's network) are the operator's policy's.
var goldenRoots = manifest.Roots{DataRoot: "/srv/lockstep-golden/apps", Policy: &policy.Policy{Apps: map[string]policy.Grants{"web": {HostNetwork: true}}}}

func load(t *testing.T, ids ...string) []*manifest.Loaded {
	t.Helper()
	var out []*manifest.Loaded
	for _, id := range ids {
		a, ps := manifest.LoadFile(filepath.Join("testdata", "apps", id+".yaml"), goldenRoots)
		if len(ps) > 0 {
			t.Fatalf("%s: %v", id, ps)
		}
		out = append(out, a)
	}
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(file, got, 0o644)
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./export -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file (run with -update if intended):\n%s", file, got)
	}
}

// docs splits a YAML stream into documents, dropping comment-only ones.
func docs(stream []byte) [][]byte {
	var out [][]byte
	for _, d := range strings.Split(string(stream), "\n---\n") {
		var body []string
		for _, l := range strings.Split(d, "\n") {
			if l != "---" && !strings.HasPrefix(l, "#") {
				body = append(body, l)
			}
		}
		if s := strings.TrimSpace(strings.Join(body, "\n")); s != "" {
			out = append(out, []byte(s+"\n"))
		}
	}
	return out
}

// strict decodes every document into the Kubernetes API type of its kind, rejecting unknown fields
// and wrong types, and returns them by "Kind/name".
func strict(t *testing.T, stream []byte) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, d := range docs(stream) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(d, &head); err != nil {
			t.Fatalf("%v in:\n%s", err, d)
		}
		var obj any
		switch head.APIVersion + " " + head.Kind {
		case "v1 Pod":
			obj = &corev1.Pod{}
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Secret":
			obj = &corev1.Secret{}
		case "v1 PersistentVolumeClaim":
			obj = &corev1.PersistentVolumeClaim{}
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		default:
			t.Fatalf("unexpected object %s %s", head.APIVersion, head.Kind)
		}
		if err := yaml.UnmarshalStrict(d, obj); err != nil {
			t.Fatalf("%s does not decode strictly: %v\n%s", head.Kind, err, d)
		}
		var name struct {
			Metadata struct{ Name string } `json:"metadata"`
		}
		yaml.Unmarshal(d, &name)
		key := head.Kind + "/" + name.Metadata.Name
		if _, dup := out[key]; dup {
			t.Fatalf("%s twice", key)
		}
		out[key] = obj
	}
	return out
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestKubePodGolden(t *testing.T) {
	out, warnings, err := Kube(load(t, "node", "web"), Options{Roots: goldenRoots})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "kube-pod.golden", out)
	again, _, _ := Kube(load(t, "node", "web"), Options{Roots: goldenRoots})
	if !bytes.Equal(out, again) {
		t.Fatal("two exports differ")
	}
	objs := strict(t, out)
	if got := strings.Join(keys(objs), " "); got != "ConfigMap/node-env ConfigMap/node-hooks ConfigMap/node-ui-env Pod/node Pod/node-ui Pod/web" {
		t.Fatalf("objects: %s", got)
	}
	pod := objs["Pod/node"].(*corev1.Pod)
	c := pod.Spec.Containers[0]
	if strings.Join(c.Command, " ") != "/entrypoint.sh" || strings.Join(c.Args, "|") != "noded|-conf=/data/node.conf|two words" {
		t.Fatalf("command %q args %q", c.Command, c.Args)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.PeriodSeconds != 30 || c.LivenessProbe.TimeoutSeconds != 10 || c.LivenessProbe.FailureThreshold != 3 ||
		strings.Join(c.LivenessProbe.Exec.Command, " ") != "node-cli getinfo" {
		t.Fatalf("liveness %+v", c.LivenessProbe)
	}
	// A 2m start period at 30s intervals: 4 probes may fail before the 3 that count.
	if c.StartupProbe == nil || c.StartupProbe.FailureThreshold != 7 {
		t.Fatalf("startup %+v", c.StartupProbe)
	}
	if *pod.Spec.TerminationGracePeriodSeconds != 600 || pod.Spec.RestartPolicy != "Always" || pod.Annotations[AnnRequires] != "storage" {
		t.Fatalf("pod spec %+v %v", pod.Spec, pod.Annotations)
	}
	if sc := c.SecurityContext; *sc.RunAsUser != 1000 || *sc.RunAsGroup != 1000 || !*sc.ReadOnlyRootFilesystem ||
		fmt.Sprint(sc.Capabilities.Add, sc.Capabilities.Drop) != "[NET_BIND_SERVICE] [ALL]" {
		t.Fatalf("security context %+v", sc)
	}
	var ports []string
	for _, p := range c.Ports {
		ports = append(ports, fmt.Sprintf("%s:%d:%d/%s", p.HostIP, p.HostPort, p.ContainerPort, p.Protocol))
	}
	if got := strings.Join(ports, " "); got != "127.0.0.1:8332:8332/TCP :8333:8333/TCP ::1:9735:9735/TCP :0:29000/UDP" {
		t.Fatalf("ports %s", got)
	}
	// Env comes from the ConfigMap, key by key.
	cm := objs["ConfigMap/node-env"].(*corev1.ConfigMap)
	if cm.Data["RPC_USER"] != "lock step" || len(c.Env) != 2 || c.Env[0].ValueFrom.ConfigMapKeyRef.Name != "node-env" {
		t.Fatalf("env %+v %+v", c.Env, cm.Data)
	}
	// The static hook goes to the volume that holds data/, from the hooks ConfigMap; the template and
	// the unmounted path are reported and annotated.
	init := pod.Spec.InitContainers
	if len(init) != 1 || init[0].Image != c.Image || !strings.Contains(init[0].Command[2], "cp '/lockstep/hooks/hook-0' '/lockstep/vol-0/node.conf' && chmod 0600 '/lockstep/vol-0/node.conf'") {
		t.Fatalf("init containers %+v", init)
	}
	if hooks := objs["ConfigMap/node-hooks"].(*corev1.ConfigMap); hooks.Data["hook-0"] != "server=1\nrpcbind=127.0.0.1\n" || len(hooks.Data) != 1 {
		t.Fatalf("hooks %+v", hooks.Data)
	}
	if got := pod.Annotations[AnnNotExported]; got != "node.conf.tmpl -> data/rpc.conf, node.conf.static -> unmounted/x.conf" {
		t.Fatalf("not exported: %q", got)
	}
	// Companion: a Pod of its own, after its app.
	ui := objs["Pod/node-ui"].(*corev1.Pod)
	if ui.Labels[LabelCompanionOf] != "node" || ui.Annotations[AnnStartsAfter] != "node" || ui.Spec.Volumes[0].HostPath.Path != "/srv/lockstep-golden/apps/node/data" ||
		!ui.Spec.Containers[0].VolumeMounts[0].ReadOnly || *ui.Spec.TerminationGracePeriodSeconds != 30 {
		t.Fatalf("companion %+v", ui)
	}
	web := objs["Pod/web"].(*corev1.Pod)
	if !web.Spec.HostNetwork || web.Spec.Containers[0].SecurityContext != nil || web.Spec.Containers[0].Image != "localhost/web:2" {
		t.Fatalf("web %+v", web.Spec)
	}
	var msgs []string
	for _, w := range warnings {
		msgs = append(msgs, w.String())
	}
	for _, want := range []string{
		"node: requires storage: Kubernetes has no start order",
		"node: container node: volume ${APP_DATA}/cache:/cache:Z: option Z has no Kubernetes equivalent",
		"node: registry.insecure [registry.local:5000] is not exported",
		"node: pre-start hook node.conf.tmpl -> data/rpc.conf is a template lockstep renders on the host: not exported",
		"node: pre-start hook node.conf.static -> unmounted/x.conf: no container mounts /srv/lockstep-golden/apps/node/unmounted/x.conf",
		"web: container web: port 9090:80: with the host's network Kubernetes needs hostPort equal to containerPort",
		`web: container web: user "www-data" is not numeric`,
		"web: container web: image localhost/web:2 is built locally",
	} {
		if !strings.Contains(strings.Join(msgs, "\n"), want) {
			t.Errorf("no warning %q in:\n%s", want, strings.Join(msgs, "\n"))
		}
	}
}

func TestKubeDeploymentPVCGolden(t *testing.T) {
	out, _, err := Kube(load(t, "node"), Options{Roots: goldenRoots, Kind: KindDeployment, Volumes: VolumesPVC})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "kube-deployment-pvc.golden", out)
	objs := strict(t, out)
	want := "ConfigMap/node-env ConfigMap/node-hooks ConfigMap/node-ui-env Deployment/node Deployment/node-ui " +
		"PersistentVolumeClaim/node-data-cache PersistentVolumeClaim/node-data-conf-extra-conf PersistentVolumeClaim/node-data-data"
	if got := strings.Join(keys(objs), " "); got != want {
		t.Fatalf("objects:\n%s\nwant\n%s", got, want)
	}
	d := objs["Deployment/node"].(*appsv1.Deployment)
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != "Recreate" || d.Spec.Selector.MatchLabels[LabelApp] != "node" ||
		d.Spec.Template.Labels[LabelApp] != "node" || d.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "node-data-data" {
		t.Fatalf("deployment %+v", d.Spec)
	}
	// The companion mounts the same source: the same claim, emitted once.
	ui := objs["Deployment/node-ui"].(*appsv1.Deployment)
	if ui.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "node-data-data" || ui.Spec.Selector.MatchLabels[LabelCompanion] != "node-ui" {
		t.Fatalf("companion deployment %+v", ui.Spec)
	}
	pvc := objs["PersistentVolumeClaim/node-data-data"].(*corev1.PersistentVolumeClaim)
	if q := pvc.Spec.Resources.Requests["storage"]; q.String() != "700G" {
		t.Fatalf("claim size %s", q.String())
	}
}

func TestOptionsAndNames(t *testing.T) {
	if _, _, err := Kube(load(t, "web"), Options{Kind: "job"}); err == nil || !strings.Contains(err.Error(), `kind "job"`) {
		t.Fatalf("kind job: %v", err)
	}
	if _, _, err := Kube(load(t, "web"), Options{Volumes: "nfs"}); err == nil {
		t.Fatal("volumes nfs accepted")
	}
	a := load(t, "web")[0]
	a.ID = "web-" // valid for lockstep, not a DNS label
	if _, _, err := Kube([]*manifest.Loaded{a}, Options{}); err == nil || !strings.Contains(err.Error(), "not a DNS label") {
		t.Fatalf("id web-: %v", err)
	}
	for in, want := range map[string]string{"": "", "/data": "-data", "/a/B_c..d/": "-a-b-c-d", "/x/ü/y": "-x-y"} {
		if got := dashed(in); got != want {
			t.Errorf("dashed(%q) = %q, want %q", in, got, want)
		}
	}
	if got := shellQuote("it's"); got != `'it'\''s'` {
		t.Fatalf("shellQuote: %s", got)
	}
}

// TestSecretEnv: env keys a container marks secret go to a Secret (base64), the others to the
// ConfigMap. Manifests cannot mark them yet; appContainers will set SecretEnv when they can.
func TestSecretEnv(t *testing.T) {
	a := load(t, "node")[0]
	k := &kubeApp{app: a, opts: Options{Roots: goldenRoots, Volumes: VolumesHost}, appData: goldenRoots.AppData("node"), claims: map[string]string{}}
	spec := podSpec{}
	c := appContainers(&a.App)[0]
	if len(c.SecretEnv) != 0 {
		t.Fatal("appContainers marks env secret, but manifests cannot say so yet")
	}
	kc, err := k.container(c, "node", &podVolumes{k: k, spec: &spec, bySource: map[string]string{}}, map[string]bool{"RPC_USER": true})
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	for _, o := range k.objects {
		b, _ := yamlMarshal(o)
		stream.WriteString("---\n")
		stream.Write(b)
	}
	objs := strict(t, stream.Bytes())
	sec := objs["Secret/node-secret"].(*corev1.Secret)
	if string(sec.Data["RPC_USER"]) != "lock step" || sec.Type != "Opaque" {
		t.Fatalf("secret %+v", sec)
	}
	if _, leaked := objs["ConfigMap/node-env"].(*corev1.ConfigMap).Data["RPC_USER"]; leaked {
		t.Fatal("the secret value is in the ConfigMap")
	}
	var ref string
	for _, e := range kc.Env {
		if e.Name == "RPC_USER" && e.ValueFrom.SecretKeyRef != nil {
			ref = e.ValueFrom.SecretKeyRef.Name
		}
	}
	if ref != "node-secret" {
		t.Fatalf("env %+v", kc.Env)
	}
	if base64.StdEncoding.EncodeToString([]byte("lock step")) != k.objects[1].Data["RPC_USER"] {
		t.Fatalf("secret data %v", k.objects[1].Data)
	}
}

// TestHostPathOfAnExistingFile: an existing regular file is mounted as type File, anything else as
// DirectoryOrCreate (lockstep creates missing sources as directories).
func TestHostPathOfAnExistingFile(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "node", "conf"), 0o755)
	os.WriteFile(filepath.Join(dir, "node", "conf", "extra.conf"), []byte("x"), 0o644)
	roots := manifest.Roots{DataRoot: dir}
	a, ps := manifest.LoadFile("testdata/apps/node.yaml", roots)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	out, _, err := Kube([]*manifest.Loaded{a}, Options{Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	pod := strict(t, out)["Pod/node"].(*corev1.Pod)
	types := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			types[strings.TrimPrefix(v.HostPath.Path, dir)] = string(*v.HostPath.Type)
		}
	}
	if types["/node/conf/extra.conf"] != "File" || types["/node/data"] != "DirectoryOrCreate" {
		t.Fatalf("hostPath types %v", types)
	}
}

func TestBundleGolden(t *testing.T) {
	files, warnings, err := Bundle(load(t, "node")[0], BundleOptions{Roots: goldenRoots})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "README.md files/data/node.conf files/unmounted/x.conf lockstep-node-ui.container lockstep-node.container" {
		t.Fatalf("bundle files: %s", got)
	}
	var all bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&all, "=== %s\n%s", n, files[n])
	}
	golden(t, "bundle-node.golden", all.Bytes())
	unit := string(files["lockstep-node.container"])
	for _, want := range []string{"After=lockstep-storage.service", `Entrypoint=["/entrypoint.sh"]`, "ReadOnly=true", `HealthCmd=["node-cli","getinfo"]`,
		"HealthStartPeriod=2m0s", "StopTimeout=600", "Volume=/srv/lockstep-golden/apps/node/cache:/cache:Z", "Label=\"io.lockstep.exported-from=node\""} {
		if !strings.Contains(unit, want) {
			t.Errorf("lockstep-node.container lacks %s:\n%s", want, unit)
		}
	}
	if !strings.HasPrefix(unit, "# Exported by lockstepctl export (app node)") || strings.Contains(unit, quadlet.Header) {
		t.Errorf("an exported unit carries lockstep's own header: a lockstepd on the host would delete it:\n%s", unit)
	}
	if strings.Contains(unit, "io.lockstep.app=") {
		t.Error("an exported container carries io.lockstep.app: a lockstepd would take it for its own")
	}
	if ui := string(files["lockstep-node-ui.container"]); !strings.Contains(ui, "After=lockstep-node.service") {
		t.Errorf("companion not after its app:\n%s", ui)
	}
	readme := string(files["README.md"])
	for _, want := range []string{"install -D -m 0600 files/data/node.conf /srv/lockstep-golden/apps/node/data/node.conf", "mkdir -p /srv/lockstep-golden/apps/node/cache",
		"systemctl start lockstep-node.service", "Not exported: pre-start templates rendered by lockstep on the host: node.conf.tmpl -> data/rpc.conf"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README lacks %q:\n%s", want, readme)
		}
	}
	if len(warnings) == 0 {
		t.Fatal("no warnings for the template hook and requires")
	}
}

// TestBundleGeneratorAccepts runs the real Quadlet generator (built from the podman module this
// project requires) in dry-run mode over exported bundles: every unit is generated, with the app's
// entrypoint, read-only root and health check on podman's command line.
func TestBundleGeneratorAccepts(t *testing.T) {
	bin := testenv.QuadletBinary(t)
	dir := t.TempDir()
	apps := load(t, "node", "web", "pool")
	demo, err := manifest.LoadDir("../catalog/demo", goldenRoots)
	if err != nil || len(demo.Problems) > 0 {
		t.Fatalf("demo catalog: %v %v", err, demo.Problems)
	}
	apps = append(apps, demo.Apps...)
	var units []string
	for _, a := range apps {
		files, _, err := Bundle(a, BundleOptions{Roots: goldenRoots})
		if err != nil {
			t.Fatal(err)
		}
		for n, b := range files {
			if strings.HasSuffix(n, ".container") {
				os.WriteFile(filepath.Join(dir, n), b, 0o644)
				units = append(units, strings.TrimSuffix(n, ".container")+".service")
			}
		}
	}
	cmd := exec.Command(bin, "-dryrun")
	cmd.Env = append(os.Environ(), "QUADLET_UNIT_DIRS="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quadlet -dryrun: %v\n%s", err, out)
	}
	if len(units) < 9 {
		t.Fatalf("only %d units: %v", len(units), units)
	}
	for _, u := range units {
		if !strings.Contains(string(out), "---"+u+"---") {
			t.Errorf("the generator made no %s:\n%s", u, out)
		}
	}
	for _, want := range []string{`"--entrypoint=[\"/entrypoint.sh\"]"`, "--read-only", `--health-cmd "[\"node-cli\",\"getinfo\"]"`,
		"--health-start-period 2m0s", "After=lockstep-storage.service", "--network host", "--label io.lockstep.exported-from=node"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("generated units lack %s:\n%s", want, out)
		}
	}
}

// TestKubeStack: a stack is one Pod with a container per member, under the members' names, which
// the Pod knows as hostnames; an ownership fix is a chown in the init container; ${APP.NAME}
// references and a dependency's data are reported.
func TestKubeStack(t *testing.T) {
	out, warnings, err := Kube(load(t, "pool"), Options{Roots: goldenRoots})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "kube-stack.golden", out)
	objs := strict(t, out)
	pod := objs["Pod/pool"].(*corev1.Pod)
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	if strings.Join(names, " ") != "db api web" || len(pod.Spec.HostAliases) != 1 || strings.Join(pod.Spec.HostAliases[0].Hostnames, " ") != "db api web" {
		t.Fatalf("containers %v, host aliases %+v", names, pod.Spec.HostAliases)
	}
	if pod.Spec.Containers[0].LivenessProbe == nil || pod.Spec.Containers[1].LivenessProbe != nil {
		t.Fatal("each member's own health check")
	}
	if objs["ConfigMap/pool-db-env"] == nil || objs["ConfigMap/pool-api-env"] == nil {
		t.Fatalf("env ConfigMaps per member: %v", keys(objs))
	}
	if init := pod.Spec.InitContainers; len(init) != 1 || !strings.Contains(init[0].Command[2], "chown -R '999:999' '/lockstep/vol-0'") {
		t.Fatalf("ownership fix: %+v", init)
	}
	if m := pod.Spec.Containers[1].VolumeMounts; len(m) != 1 || m[0].MountPath != "/node/.cookie" || !m[0].ReadOnly {
		t.Fatalf("dependency mount: %+v", m)
	}
	var msgs []string
	for _, w := range warnings {
		msgs = append(msgs, w.String())
	}
	for _, want := range []string{"container db: env MARIADB_PASSWORD use values lockstep resolves at run time", "container api: mounts data/.cookie of node's data"} {
		if !strings.Contains(strings.Join(msgs, "\n"), want) {
			t.Errorf("no warning %q in:\n%s", want, strings.Join(msgs, "\n"))
		}
	}
	// The bundle: a unit per member under its podman name, each after the one before.
	files, _, err := Bundle(load(t, "pool")[0], BundleOptions{Roots: goldenRoots})
	if err != nil {
		t.Fatal(err)
	}
	api := string(files["lockstep-pool-api.container"])
	if !strings.Contains(api, "ContainerName=pool-api") || !strings.Contains(api, "After=lockstep-node.service lockstep-pool-db.service") ||
		!strings.Contains(api, "Volume=/srv/lockstep-golden/apps/node/data/.cookie:/node/.cookie:ro") {
		t.Fatalf("lockstep-pool-api.container:\n%s", api)
	}
	if readme := string(files["README.md"]); !strings.Contains(readme, "chown -R 999:999 /srv/lockstep-golden/apps/pool/db") {
		t.Fatalf("README:\n%s", readme)
	}
}
