#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Kubernetes manifests (packaging/kubernetes) hold what an operator
relies on, and their configuration files work.

The kustomize base and the sidecar sample (examples/existing-broker, which
uses the Component components/sidecar) are built the way kustomize builds
them (resources, components, configMapGenerator files, strategic-merge
patches by target, the images rewrite; any other field fails the test);
where kubectl is on PATH (and, for the sample, knows Components) its own
"kubectl kustomize" output is checked the same way and must equal this
test's build up to hash suffixes and order. Then:

  objects      a Deployment, a Service, the generated ConfigMaps; nothing
               else (the examples stay out of the base)
  pod          runAsNonRoot, seccompProfile RuntimeDefault, no host
               network, no service account token, a grace period longer
               than moat's [limits] drain_timeout (read from moat.ini, 20 s
               when unset) and a 2 s linger
  containers   each (the sample: moat's): an image with a pinned tag,
               allowPrivilegeEscalation false, readOnlyRootFilesystem,
               every capability dropped and none added, cpu and memory
               requests and limits, no hostPort
  moat         ports mqtts 8883 and admin 9883; readiness GET /readyz,
               liveness (and startup) GET /healthz on the admin port,
               which is moat.ini's [admin] address on every address of the
               pod (the kubelet probes the pod's IP) and the pod's
               prometheus.io/port; -c naming moat.ini in its ConfigMap;
               every file moat.ini names (cert, key, ca, map,
               hmac_secret_file, ...) is a key of a volume mounted at that
               directory, without subPath, cert/key/ca being tls.crt,
               tls.key and ca.crt of one Secret (cert-manager's layout);
               the backend is loopback and is the broker's listener
  broker       no probes; its mosquitto.conf has exactly one listener,
               "listener 1883 127.0.0.1", no port/bind_address,
               allow_anonymous false, password_file (and in the base
               acl_file) in mounted volumes. The base's broker: no ports,
               the ACL "pattern readwrite devices/%u/#", a preStop sleep
               that outlives moat's drain, within the grace period. The
               sample's broker container is exactly as the operator wrote
               it
  service      exposes 8883 only, to the moat container's port, neither
               the admin port nor plaintext 1883, and selects the pod
  twins        mutated copies (a probe path, a TCP probe, a short grace
               period, a long drain_timeout, the admin port or 1883 in the
               Service, [admin] on loopback or another port, a missing
               volume, subPath, a changed broker container, ...) are each
               refused with their problem named; the builder refuses a
               kustomization field it does not build
  certificate  examples/certificate.yaml writes the Secret moat mounts, for
               "server auth", from an Issuer it defines
  yamllint     strict, with packaging/yamllint.yaml (when installed)
  files work   moat --check accepts the ConfigMap's moat.ini (paths moved
               under the test directory, test certificates in the Secret's
               place, the listen and admin addresses on loopback), the
               broker starts with its ConfigMap's mosquitto.conf, moat's
               admin endpoint answers GET /healthz and /readyz with 200,
               and a device's publish through moat arrives at a subscriber
               on that broker (when moat and Mosquitto are available); for
               the base and again for the Component's moat.ini with the
               sample's mosquitto.conf

Needs python3-yaml (skips without it)."""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is not installed (Debian: apt-get install "
          "python3-yaml)")
    sys.exit(mt.SKIP)

SRCDIR = os.environ.get("MOAT_SRCDIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
KDIR = os.path.join(SRCDIR, "packaging", "kubernetes")
YAMLLINT_CONF = os.path.join(SRCDIR, "packaging", "yamllint.yaml")

SIDECAR_SAMPLE = os.path.join(KDIR, "examples", "existing-broker")

DEVICE_PORT = 8883
ADMIN_PORT = 9883
BROKER_LISTENER = ("1883", "127.0.0.1")
# [limits] drain_timeout's default (src/core/config.c), and the linger moat
# gives each connection it ends after that (LINGER_MS, src/io/conn_int.h):
# the grace period must cover both.
DEFAULT_DRAIN = "20s"
LINGER_SECONDS = 2
PROBE_PATHS = {"readinessProbe": ("/readyz",), "livenessProbe": ("/healthz",),
               "startupProbe": ("/healthz", "/readyz")}
PROMETHEUS_PORT = "prometheus.io/port"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
# Keys of a Secret mounted without "items": cert-manager's layout.
CERT_MANAGER_KEYS = ("tls.crt", "tls.key", "ca.crt")
# moat.ini keys that name files, and the Secret key each must be.
TLS_KEYS = {"cert": "tls.crt", "key": "tls.key", "ca": "ca.crt"}
PATH_KEYS = ("cert", "key", "ca", "crl", "hmac_secret_file", "map")


# ---------------------------------------------------------------------------
# loading

def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def read(path):
    with open(path) as f:
        return f.read()


# Fields of a kustomization (or Component) this test builds; any other
# fails the test, so that it never checks less than kustomize would build.
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources",
                        "configMapGenerator", "images", "components",
                        "patches"}
KUSTOMIZATION_KINDS = {
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
    "Component": "kustomize.config.k8s.io/v1alpha1",
}
PATCH_FIELDS = {"path", "target"}
TARGET_FIELDS = {"group", "version", "kind", "name"}


def load_kustomization(kdir, kind):
    k = load_yaml_docs(os.path.join(kdir, "kustomization.yaml"))[0]
    if k.get("kind", "Kustomization") != kind or \
            k.get("apiVersion") != KUSTOMIZATION_KINDS[kind]:
        raise mt.Failure("%s/kustomization.yaml is %s %s, not %s %s"
                         % (kdir, k.get("apiVersion"), k.get("kind"),
                            KUSTOMIZATION_KINDS[kind], kind))
    extra = set(k) - KUSTOMIZATION_FIELDS
    if extra:
        raise mt.Failure("%s/kustomization.yaml uses %s, which this test "
                         "does not build: extend build()" % (kdir,
                                                             sorted(extra)))
    return k


def generate(k, kdir):
    """The ConfigMaps of configMapGenerator (files, KEY=PATH too)."""
    out = []
    for g in k.get("configMapGenerator", []):
        extra = set(g) - {"name", "files"}
        if extra:
            raise mt.Failure("%s: configMapGenerator %s uses %s, which this "
                             "test does not build" % (kdir, g.get("name"),
                                                      sorted(extra)))
        data = {}
        for spec in g.get("files", []):
            key, _, path = spec.rpartition("=")
            data[key or os.path.basename(path)] = read(
                os.path.join(kdir, path))
        out.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": g["name"]}, "data": data})
    return out


def api_group_version(o):
    gv = o.get("apiVersion", "")
    return tuple(gv.split("/", 1)) if "/" in gv else ("", gv)


def selects(target, o):
    group, version = api_group_version(o)
    have = {"group": group, "version": version, "kind": o.get("kind"),
            "name": o.get("metadata", {}).get("name")}
    return all(have[f] == v for f, v in target.items())


def apply_patches(k, kdir, objs):
    """patches: strategic-merge patches from files, each applied to the
    objects its target selects (any kind), or without a target to the
    object of its own kind and name."""
    for p in k.get("patches", []):
        extra = set(p) - PATCH_FIELDS
        target = p.get("target")
        if extra or "path" not in p or not isinstance(target or {}, dict) or \
                set(target or {}) - TARGET_FIELDS:
            raise mt.Failure("%s: patch %s uses fields this test does not "
                             "build (it knows path and a target by %s)"
                             % (kdir, p, sorted(TARGET_FIELDS)))
        docs = load_yaml_docs(os.path.join(kdir, p["path"]))
        if len(docs) != 1 or not isinstance(docs[0], dict):
            raise mt.Failure("%s: patch %s is not one strategic-merge "
                             "object" % (kdir, p["path"]))
        patch = docs[0]
        if target is None:
            target = {"kind": patch.get("kind"),
                      "name": patch.get("metadata", {}).get("name")}
        hits = [o for o in objs if selects(target, o)]
        if not hits:
            raise mt.Failure("%s: patch %s selects nothing (target %s)"
                             % (kdir, p["path"], target))
        for o in hits:
            body = {f: v for f, v in patch.items()
                    if f not in ("apiVersion", "kind")}
            meta = dict(body.get("metadata", {}))
            meta.pop("name", None)      # the target's name stays
            body["metadata"] = meta
            merged = strategic_merge(o, body, (o.get("kind"),))
            o.clear()
            o.update(merged)


# Merge keys of the lists a strategic merge patch merges element by element
# (Kubernetes' patchMergeKey); every other list is replaced.
MERGE_KEYS = {"containers": "name", "initContainers": "name",
              "ephemeralContainers": "name", "volumes": "name",
              "volumeMounts": "name", "volumeDevices": "devicePath",
              "env": "name", "imagePullSecrets": "name"}


def merge_key(path, field):
    if field == "ports":
        # A Service's ports merge by port, a container's by containerPort.
        return "port" if path == ("Service", "spec") else "containerPort"
    return MERGE_KEYS.get(field)


def strategic_merge(dst, patch, path):
    """dst with the strategic-merge patch applied (dst is not changed):
    maps merge recursively, null deletes a key, lists with a merge key
    merge by it, other lists are replaced; the directives "$patch:
    replace" and "$patch: delete" in maps and list elements."""
    directive = patch.get("$patch")
    unknown = [f for f in patch if f.startswith("$") and f != "$patch"]
    if unknown or directive not in (None, "replace", "delete", "merge"):
        raise mt.Failure("strategic merge at %s: %s is not built by this "
                         "test" % ("/".join(path), unknown or directive))
    body = {f: v for f, v in patch.items() if f != "$patch"}
    if directive == "delete":
        return None
    if directive == "replace":
        return copy.deepcopy(body)
    out = copy.deepcopy(dst) if isinstance(dst, dict) else {}
    for f, v in body.items():
        if v is None:
            out.pop(f, None)
        elif isinstance(v, dict):
            merged = strategic_merge(out.get(f), v, path + (f,))
            if merged is None:
                out.pop(f, None)
            else:
                out[f] = merged
        elif isinstance(v, list):
            out[f] = merge_list(out.get(f), v, path, f)
        else:
            out[f] = copy.deepcopy(v)
    return out


def merge_list(dst, patch, path, field):
    key = merge_key(path, field)
    items = [e for e in patch if not (isinstance(e, dict) and
                                      e.get("$patch") == "replace" and
                                      len(e) == 1)]
    if len(items) != len(patch) or key is None:
        for e in items:
            if isinstance(e, dict) and "$patch" in e:
                raise mt.Failure("strategic merge at %s/%s: $patch in an "
                                 "element of a replaced list"
                                 % ("/".join(path), field))
        return copy.deepcopy(items)
    out = copy.deepcopy(dst) if isinstance(dst, list) else []
    for e in items:
        if not isinstance(e, dict) or key not in e:
            raise mt.Failure("strategic merge at %s/%s: element without "
                             "its merge key %s: %s"
                             % ("/".join(path), field, key, e))
        at = [i for i, d in enumerate(out) if d.get(key) == e[key]]
        if at:
            merged = strategic_merge(out[at[0]], e, path + (field,))
            if merged is None:
                del out[at[0]]
            else:
                out[at[0]] = merged
        elif e.get("$patch") != "delete":
            out.append(strategic_merge({}, e, path + (field,)))
    return out


def set_images(objs, images):
    images = {i["name"]: i for i in images}
    for o in objs:
        if o.get("kind") not in WORKLOAD_KINDS:
            continue
        spec = pod_spec(o)
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            name, tag = split_image(c.get("image", ""))
            if name in images:
                im = images[name]
                c["image"] = "%s:%s" % (im.get("newName", name),
                                        im.get("newTag", tag or "latest"))


def build(kdir):
    """Objects of a kustomization, built the way kustomize does for the
    features used here: resources (files), components, configMapGenerator
    (files, KEY=PATH too), patches (strategic merge, by target) and images;
    a Component adds its own of these to the objects built so far.
    Generated names keep no hash suffix."""
    k = load_kustomization(kdir, "Kustomization")
    objs = []
    for r in k.get("resources", []):
        path = os.path.join(kdir, r)
        if not os.path.isfile(path):
            raise mt.Failure("%s: resource %s is not a file; this test "
                             "builds files only" % (kdir, r))
        objs += load_yaml_docs(path)
    images = list(k.get("images", []))
    for c in k.get("components", []):
        cdir = os.path.normpath(os.path.join(kdir, c))
        ck = load_kustomization(cdir, "Component")
        for r in ck.get("resources", []):
            objs += load_yaml_docs(os.path.join(cdir, r))
        if ck.get("components"):
            raise mt.Failure("%s: nested components are not built by this "
                             "test" % cdir)
        objs += generate(ck, cdir)
        apply_patches(ck, cdir, objs)
        images += ck.get("images", [])
    objs += generate(k, kdir)
    apply_patches(k, kdir, objs)
    set_images(objs, images)
    return objs



def kubectl_build(kdir):
    """"kubectl kustomize" output, or None without kubectl."""
    if shutil.which("kubectl") is None:
        return None
    r = subprocess.run(["kubectl", "kustomize", kdir], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    if r.returncode != 0:
        raise mt.Failure("kubectl kustomize %s failed:\n%s" % (kdir,
                                                                 r.stderr))
    return [d for d in yaml.safe_load_all(r.stdout) if d is not None]


def split_image(image):
    """("registry/name", "tag") of an image reference (tag "" if none)."""
    if "@" in image:
        return image.split("@", 1)[0], "@" + image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        return image.rsplit(":", 1)[0], image.rsplit(":", 1)[1]
    return image, ""


def pod_spec(o):
    return o.get("spec", {}).get("template", {}).get("spec", {})


def parse_ini(text):
    """moat.ini as {section: [(key, value)]} (comments cut like inih)."""
    out, cur = {}, None
    for line in text.splitlines():
        s = line.strip()
        if not s or s[0] in ";#":
            continue
        if s.startswith("["):
            cur = s[1:s.index("]")]
            out.setdefault(cur, [])
            continue
        key, _, val = s.partition("=")
        val = re.split(r"\s;", val)[0]
        out.setdefault(cur, []).append((key.strip(), val.strip()))
    return out


def ini_get(ini, section, key):
    vals = [v for k, v in ini.get(section, []) if k == key]
    return vals[-1] if vals else None


def conf_lines(text):
    """Mosquitto config lines without comments: [(directive, [args])]."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split()
        out.append((parts[0], parts[1:]))
    return out


# ---------------------------------------------------------------------------
# checks on one set of objects

class Layout:
    """What a set of objects is: the all-in-one base (broker container
    "broker", moat's ConfigMaps only), or a broker's own workload with
    moat added by the sidecar Component (broker is the operator's
    container, which must come out unchanged: broker_orig)."""

    def __init__(self, label, broker="broker", broker_orig=None,
                 acl=True):
        self.label = label
        self.broker = broker
        self.broker_orig = broker_orig
        self.acl = acl


class Checker:
    def __init__(self, t, objs, layout, report=True):
        self.t = t
        self.objs = objs
        self.layout = layout
        self.label = layout.label
        self.report = report
        self.problems = []

    def need(self, cond, msg):
        if not cond:
            self.problems.append(msg)
        return cond

    def one(self, kind):
        found = [o for o in self.objs if o.get("kind") == kind]
        self.need(len(found) == 1, "expected one %s, found %d"
                  % (kind, len(found)))
        return found[0] if found else None

    def configmap(self, name):
        for o in self.objs:
            if o.get("kind") == "ConfigMap" and o["metadata"]["name"] == name:
                return o
        return None

    def volume_files(self, vol):
        """{file name in the mount: (kind, object name, key)}."""
        if "configMap" in vol:
            name = vol["configMap"]["name"]
            cm = self.configmap(name)
            if not self.need(cm is not None, "volume %s: no ConfigMap %s"
                             % (vol["name"], name)):
                return {}
            if "items" in vol["configMap"]:
                return {i["path"]: ("ConfigMap", name, i["key"])
                        for i in vol["configMap"]["items"]}
            return {k: ("ConfigMap", name, k) for k in cm.get("data", {})}
        if "secret" in vol:
            name = vol["secret"]["secretName"]
            if "items" in vol["secret"]:
                return {i["path"]: ("Secret", name, i["key"])
                        for i in vol["secret"]["items"]}
            return {k: ("Secret", name, k) for k in CERT_MANAGER_KEYS}
        self.need(False, "volume %s is neither a ConfigMap nor a Secret"
                  % vol["name"])
        return {}

    def resolve(self, container, volumes, path):
        """(mountPath, volume, file name, (kind, object, key)) of the file
        at path in container, or None."""
        best = None
        for m in container.get("volumeMounts", []):
            mp = m["mountPath"].rstrip("/")
            if path.startswith(mp + "/") and (
                    best is None or len(mp) > len(best["mountPath"])):
                best = m
        if best is None:
            return None
        self.need("subPath" not in best, "%s: mount %s uses subPath, so "
                  "renewed files never reach the running pod"
                  % (container["name"], best["mountPath"]))
        vol = volumes.get(best["name"])
        if vol is None:
            self.need(False, "%s mounts %s, which is not a volume of the pod"
                      % (container["name"], best["name"]))
            return None
        rel = path[len(best["mountPath"].rstrip("/")) + 1:]
        files = self.volume_files(vol)
        if rel not in files:
            return (best["mountPath"], vol, rel, None)
        return (best["mountPath"], vol, rel, files[rel])

    def data_of(self, ref):
        kind, name, key = ref
        if kind != "ConfigMap":
            return None
        cm = self.configmap(name)
        return cm["data"].get(key) if cm else None

    def container_basics(self, pod, c):
        n = c.get("name", "?")
        sc = c.get("securityContext", {})
        psc = pod.get("securityContext", {})
        name, tag = split_image(c.get("image", ""))
        self.need(name and tag and tag != "latest",
                  "%s: image %r has no pinned tag" % (n, c.get("image")))
        self.need(sc.get("allowPrivilegeEscalation") is False,
                  "%s: allowPrivilegeEscalation is not false" % n)
        self.need(sc.get("readOnlyRootFilesystem") is True,
                  "%s: readOnlyRootFilesystem is not true" % n)
        self.need(sc.get("privileged") is not True, "%s: privileged" % n)
        caps = sc.get("capabilities", {})
        self.need("ALL" in caps.get("drop", []),
                  "%s: capabilities.drop lacks ALL" % n)
        self.need(not caps.get("add"), "%s: adds capabilities %s"
                  % (n, caps.get("add")))
        self.need(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True,
                  "%s: runAsNonRoot is not true" % n)
        self.need(sc.get("runAsUser", psc.get("runAsUser", 1)) != 0,
                  "%s: runs as uid 0" % n)
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
        self.need(seccomp.get("type") == "RuntimeDefault",
                  "%s: seccompProfile is not RuntimeDefault" % n)
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                self.need(r in res.get(kind, {}), "%s: no %s.%s"
                          % (n, kind, r))
        for p in c.get("ports", []):
            self.need("hostPort" not in p, "%s: hostPort %s" % (n, p))

    def run(self):
        """The checks; raises mt.Failure naming each problem, or returns
        what files_work needs. With report=False it only collects
        self.problems (for the rejecting twins)."""
        info = self.check_all()
        if not self.report:
            return info
        if self.problems or info is None:
            for p in self.problems:
                mt.say("    problem (%s): %s" % (self.label, p))
            raise mt.Failure("%d problem(s) in %s" % (len(self.problems),
                                                       self.label))
        self.t.ok("%s: pod, containers, probes, volumes, moat.ini, "
                  "mosquitto.conf and service hold what an operator relies "
                  "on" % self.label)
        return info

    def check_all(self):
        lay = self.layout
        kinds = sorted(o.get("kind", "?") for o in self.objs)
        self.need(set(kinds) <= {"Deployment", "Service", "ConfigMap"},
                  "%s has objects other than a Deployment, a Service "
                  "and ConfigMaps: %s" % (self.label, kinds))
        dep = self.one("Deployment")
        svc = self.one("Service")
        if dep is None or svc is None:
            return None
        pod = pod_spec(dep)
        self.check_pod(pod)
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        self.need(len(volumes) == len(pod.get("volumes", [])),
                  "pod: two volumes share a name")
        containers = {c["name"]: c for c in pod.get("containers", [])}
        self.need(set(containers) == {"moat", lay.broker},
                  "pod: containers are %s, not moat and %s"
                  % (sorted(containers), lay.broker))
        if lay.broker_orig is None:
            for c in containers.values():
                self.container_basics(pod, c)
        else:
            self.container_basics(pod, containers.get("moat", {}))
        moat, broker = containers.get("moat"), containers.get(lay.broker)
        if moat is None or broker is None:
            return None
        m = self.check_moat(pod, dep, moat, volumes)
        if m is None:
            return None
        b = self.check_broker(pod, broker, volumes, m["drain"])
        if b is None:
            return None
        self.check_service(svc, dep, m["named"])
        return dict(m, **b, volumes=volumes, checker=self)

    def check_pod(self, pod):
        psc = pod.get("securityContext", {})
        self.need(psc.get("runAsNonRoot") is True,
                  "pod: securityContext.runAsNonRoot is not true")
        self.need(psc.get("seccompProfile", {}).get("type") ==
                  "RuntimeDefault", "pod: seccompProfile is not "
                  "RuntimeDefault")
        self.need(not pod.get("hostNetwork"),
                  "pod: hostNetwork would share the node's loopback")
        self.need(pod.get("automountServiceAccountToken") is False,
                  "pod: automountServiceAccountToken is not false")

    def check_probes(self, moat, named):
        for probe, paths in PROBE_PATHS.items():
            pr = moat.get(probe)
            if pr is None and probe == "startupProbe":
                continue
            pr = pr or {}
            get = pr.get("httpGet", {})
            port = get.get("port")
            self.need(get.get("path") in paths and
                      named.get(port, port) == ADMIN_PORT and
                      get.get("scheme", "HTTP") == "HTTP",
                      "moat: %s is not an HTTP GET of %s on the admin port "
                      "%d: %s" % (probe, " or ".join(paths), ADMIN_PORT, pr))

    def check_grace(self, pod, drain):
        grace = pod.get("terminationGracePeriodSeconds", 30)
        self.need(grace > drain + LINGER_SECONDS,
                  "pod: terminationGracePeriodSeconds %s is not longer than "
                  "moat's drain_timeout of %d s and a %d s linger"
                  % (grace, drain, LINGER_SECONDS))
        return grace

    def check_moat(self, pod, dep, moat, volumes):
        ports = moat.get("ports", [])
        numbers = sorted(p.get("containerPort") for p in ports)
        self.need(numbers == [DEVICE_PORT, ADMIN_PORT],
                  "moat: container ports are %s, not [%d, %d]"
                  % (numbers, DEVICE_PORT, ADMIN_PORT))
        named = {p.get("name"): p.get("containerPort") for p in ports}
        self.need(named.get("mqtts") == DEVICE_PORT and
                  named.get("admin") == ADMIN_PORT,
                  "moat: ports are not named mqtts %d and admin %d: %s"
                  % (DEVICE_PORT, ADMIN_PORT, named))
        self.check_probes(moat, named)
        argv = moat.get("command", []) + moat.get("args", [])
        ini_path = argv[argv.index("-c") + 1] if "-c" in argv[:-1] else None
        if not self.need(ini_path is not None,
                         "moat: no -c FILE in command/args %s" % argv):
            return None
        r = self.resolve(moat, volumes, ini_path)
        if not self.need(r is not None and r[3] is not None and
                         r[3][0] == "ConfigMap",
                         "moat: -c %s is not a file of a mounted ConfigMap"
                         % ini_path):
            return None
        ini_text = self.data_of(r[3])
        ini = parse_ini(ini_text)
        files, secret_of = self.check_ini_files(moat, volumes, ini)
        listen = [v for k, v in ini.get("listen", []) if k == "address"]
        self.need(listen and all(a.rsplit(":", 1)[-1] == str(DEVICE_PORT)
                                 for a in listen),
                  "moat.ini [listen] address %s is not on port %d"
                  % (listen, DEVICE_PORT))
        backend = ini_get(ini, "backend", "address") or "127.0.0.1:1883"
        self.need(backend == "%s:%s" % (BROKER_LISTENER[1],
                                         BROKER_LISTENER[0]),
                  "moat.ini [backend] address %s is not the broker's "
                  "listener %s:%s" % (backend, BROKER_LISTENER[1],
                                      BROKER_LISTENER[0]))
        admin = ini_get(ini, "admin", "address") or "off"
        host, _, port = admin.rpartition(":")
        self.need(port == str(named.get("admin")) and
                  port == str(ADMIN_PORT),
                  "moat.ini [admin] address %s is not on the container's "
                  "admin port %s" % (admin, named.get("admin")))
        self.need(host.strip("[]") in ("0.0.0.0", "::"),
                  "moat.ini [admin] address %s is not on every address of "
                  "the pod, so the kubelet's probes (to the pod's IP) "
                  "cannot reach it" % admin)
        notes = dep["spec"]["template"].get("metadata", {}).get(
            "annotations", {})
        self.need(notes.get(PROMETHEUS_PORT, str(ADMIN_PORT)) ==
                  str(ADMIN_PORT), "pod: annotation %s is %s, not the admin "
                  "port %d" % (PROMETHEUS_PORT, notes.get(PROMETHEUS_PORT),
                               ADMIN_PORT))
        drain = ini_get(ini, "limits", "drain_timeout") or DEFAULT_DRAIN
        drain_s = duration_seconds(drain)
        if not self.need(drain_s is not None, "moat.ini [limits] "
                         "drain_timeout %r is not a duration" % drain):
            drain_s = 0
        grace = self.check_grace(pod, drain_s)
        return {"named": named, "ini_path": ini_path, "ini_text": ini_text,
                "moat_files": files, "drain": drain_s, "grace": grace,
                "tls_secret": next(iter(secret_of.values()), None)}

    def check_ini_files(self, moat, volumes, ini):
        files = {}
        secret_of = {}
        for sec, items in ini.items():
            for key, val in items:
                path = None
                if key in PATH_KEYS:
                    path = val
                elif key == "password" and val.startswith("file:"):
                    path = val[5:]
                if path is None:
                    continue
                rr = self.resolve(moat, volumes, path)
                if not self.need(rr is not None and rr[3] is not None,
                                 "moat.ini [%s] %s = %s: no mounted volume "
                                 "has that file" % (sec, key, path)):
                    continue
                files[path] = rr[3]
                if key in TLS_KEYS:
                    self.need(rr[3][0] == "Secret" and
                              rr[3][2] == TLS_KEYS[key],
                              "moat.ini [tls] %s = %s is %s, not key %s of "
                              "a Secret" % (key, path, rr[3], TLS_KEYS[key]))
                    secret_of[key] = rr[3][1]
        self.need(set(secret_of) == set(TLS_KEYS) and
                  len(set(secret_of.values())) == 1,
                  "moat.ini: cert, key and ca do not come from one Secret: "
                  "%s" % secret_of)
        return files, secret_of

    def check_broker(self, pod, broker, volumes, drain):
        lay = self.layout
        if lay.broker_orig is not None:
            self.need(broker == lay.broker_orig,
                      "%s: the broker's container is not unchanged: %s"
                      % (lay.broker, broker))
        else:
            self.need(not broker.get("ports"), "broker: exposes container "
                      "ports %s" % broker.get("ports"))
            self.check_broker_waits(pod, broker, drain)
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            self.need(probe not in broker, "broker: has a %s, which cannot "
                      "reach a loopback-only broker" % probe)
        argv = broker.get("command", []) + broker.get("args", [])
        conf_path = argv[argv.index("-c") + 1] if "-c" in argv[:-1] else None
        if not self.need(conf_path is not None,
                         "broker: no -c FILE in command/args %s" % argv):
            return None
        r = self.resolve(broker, volumes, conf_path)
        if not self.need(r is not None and r[3] is not None and
                         r[3][0] == "ConfigMap",
                         "broker: -c %s is not a file of a mounted ConfigMap"
                         % conf_path):
            return None
        conf_text = self.data_of(r[3])
        conf = conf_lines(conf_text)
        listeners = [args for d, args in conf if d == "listener"]
        self.need(listeners == [list(BROKER_LISTENER)],
                  "mosquitto.conf: listeners are %s; there must be exactly "
                  "one, \"listener %s %s\"" % (listeners, *BROKER_LISTENER))
        for d in ("port", "bind_address", "bind_interface",
                  "mount_point"):
            self.need(all(x != d for x, _ in conf),
                      "mosquitto.conf: has %s" % d)
        opts = {d: args for d, args in conf}
        self.need(opts.get("allow_anonymous") == ["false"],
                  "mosquitto.conf: allow_anonymous is not false")
        acl_text = None
        broker_files = {}
        for d in ("password_file", "acl_file"):
            if d == "acl_file" and not lay.acl:
                continue
            if not self.need(d in opts, "mosquitto.conf: no %s" % d):
                continue
            path = opts[d][0]
            rr = self.resolve(broker, volumes, path)
            if self.need(rr is not None and rr[3] is not None,
                         "mosquitto.conf: %s %s is in no mounted volume"
                         % (d, path)):
                broker_files[path] = rr[3]
                if d == "acl_file":
                    acl_text = self.data_of(rr[3])
        if acl_text is not None:
            acl = [l.strip() for l in acl_text.splitlines()
                   if l.strip() and not l.strip().startswith("#")]
            self.need(acl == ["pattern readwrite devices/%u/#"],
                      "ACL is %s, not pattern readwrite devices/%%u/#" % acl)
        return {"conf_path": conf_path, "conf_text": conf_text,
                "broker_files": broker_files}

    def check_broker_waits(self, pod, broker, drain):
        """The base's broker sleeps in preStop until moat has drained, and
        the grace period covers that sleep."""
        cmd = broker.get("lifecycle", {}).get("preStop", {}).get(
            "exec", {}).get("command", [])
        wait = int(cmd[1]) if len(cmd) == 2 and cmd[0] == "sleep" and \
            str(cmd[1]).isdigit() else None
        if not self.need(wait is not None, "broker: no preStop "
                         "\"sleep SECONDS\" to wait out moat's drain: %s"
                         % cmd):
            return
        self.need(wait >= drain + LINGER_SECONDS,
                  "broker: preStop sleeps %d s, less than moat's "
                  "drain_timeout of %d s and a %d s linger"
                  % (wait, drain, LINGER_SECONDS))
        grace = pod.get("terminationGracePeriodSeconds", 30)
        self.need(grace > wait, "pod: terminationGracePeriodSeconds %s is "
                  "not longer than the broker's preStop sleep of %d s"
                  % (grace, wait))

    def check_service(self, svc, dep, named):
        sp = svc.get("spec", {})
        sports = sp.get("ports", [])
        self.need([p.get("port") for p in sports] == [DEVICE_PORT],
                  "service: ports %s, not only %d"
                  % ([p.get("port") for p in sports], DEVICE_PORT))
        for p in sports:
            tp = p.get("targetPort", p.get("port"))
            self.need(named.get(tp, tp) == DEVICE_PORT,
                      "service: targetPort %s is not moat's %d"
                      % (tp, DEVICE_PORT))
            self.need(named.get(tp, tp) != ADMIN_PORT and
                      p.get("port") != ADMIN_PORT,
                      "service: exposes the admin port (%s)" % p)
            self.need(str(BROKER_LISTENER[0]) not in
                      (str(tp), str(p.get("port"))),
                      "service: exposes the broker's plaintext port (%s)"
                      % p)
        labels = dep["spec"]["template"].get("metadata", {}).get("labels", {})
        sel = sp.get("selector", {})
        self.need(sel and all(labels.get(k) == v for k, v in sel.items()),
                  "service: selector %s does not select the pod %s"
                  % (sel, labels))


def duration_seconds(text):
    """Seconds of a moat duration (0, or a number and ms, s, m or h)."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", text)
    if m is None or (m.group(2) is None and m.group(1) != "0"):
        return None
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 0}[m.group(2)]
    return int(m.group(1)) * unit


# ---------------------------------------------------------------------------

def check_certificate(t, tls_secret):
    path = os.path.join(KDIR, "examples", "certificate.yaml")
    docs = load_yaml_docs(path)
    certs = [d for d in docs if d.get("kind") == "Certificate"]
    issuers = {(d.get("kind"), d["metadata"]["name"]) for d in docs
               if d.get("kind") in ("Issuer", "ClusterIssuer")}
    t.check(len(certs) == 1, "examples/certificate.yaml has one Certificate")
    spec = certs[0]["spec"]
    t.check(spec.get("secretName") == tls_secret,
            "the Certificate writes the Secret moat mounts (%s)" % tls_secret,
            "secretName: %s" % spec.get("secretName"))
    t.check("server auth" in spec.get("usages", []),
            "the Certificate is for server auth")
    ref = spec.get("issuerRef", {})
    t.check((ref.get("kind", "Issuer"), ref.get("name")) in issuers,
            "the Certificate's issuer is defined in the example",
            "issuerRef %s, defined: %s" % (ref, issuers))


def check_yamllint(t):
    if shutil.which("yamllint") is None:
        mt.say("    note: yamllint not installed; not linting (Debian: "
               "apt-get install yamllint)")
        return
    r = mt.run_cmd(["yamllint", "-s", "-c", YAMLLINT_CONF, KDIR], timeout=60)
    t.check(r.returncode == 0, "yamllint -s accepts packaging/kubernetes",
            r.stdout + r.stderr)


def http_get(port, path):
    """(status, body) of GET path from 127.0.0.1:port."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=5) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return None, str(e)


def files_work(t, info, name="pod"):
    """Run moat --check, Mosquitto and moat with the ConfigMap's files;
    GET /healthz and /readyz from moat's admin endpoint."""
    for tool in ("mosquitto", "mosquitto_pub", "mosquitto_sub"):
        if shutil.which(tool) is None:
            mt.say("    note: %s not installed; not running the files" % tool)
            return
    try:
        moat = t.moat
    except mt.Failure as e:
        mt.say("    note: %s; not running the files" % e)
        return
    chk = info["checker"]
    root = t.path("root-" + name)
    srv_cert, srv_key = t.pki.server()
    ca = t.pki.ca
    secret_files = {"tls.crt": read(srv_cert), "tls.key": read(srv_key),
                    "ca.crt": read(ca),
                    "hmac.secret": os.urandom(24).hex() + "\n"}

    def place(path, ref):
        kind, name, key = ref
        text = chk.data_of(ref) if kind == "ConfigMap" else \
            secret_files.get(key)
        if text is None:
            raise mt.Failure("no test content for %s %s key %s"
                             % (kind, name, key))
        dst = root + path
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "w") as f:
            f.write(text)
        os.chmod(dst, 0o644)
        return dst

    broker_port = mt.free_port()
    admin_port = mt.free_port()
    ini = info["ini_text"]
    for path, ref in info["moat_files"].items():
        place(path, ref)
        ini = ini.replace(" " + path, " " + root + path)
    ini = re.sub(r"(?m)^address = [0-9.*]+:%d$" % DEVICE_PORT,
                 "address = 127.0.0.1:0", ini)
    ini, n = re.subn(r"(?m)^address = [0-9.:\[\]]+:%d$" % ADMIN_PORT,
                     "address = 127.0.0.1:%d" % admin_port, ini)
    t.check(n == 1, "moat.ini has one [admin] address on port %d, moved to "
            "127.0.0.1:%d for the test" % (ADMIN_PORT, admin_port))
    ini = re.sub(r"(?m)^address = 127\.0\.0\.1:1883$",
                 "address = 127.0.0.1:%d" % broker_port, ini)
    ini_path = root + info["ini_path"]
    os.makedirs(os.path.dirname(ini_path), exist_ok=True)
    with open(ini_path, "w") as f:
        f.write(ini)
    # The operator's edit: one device in the map.
    map_path = root + next(p for p, ref in info["moat_files"].items()
                           if ref[2] == "identities.ini")
    with open(map_path, "a") as f:
        f.write("\n[sensor-1]\n")

    r = t.moat_run(["--check", "-c", ini_path])
    t.check(r.returncode == 0, "moat --check accepts the ConfigMap's "
            "moat.ini with test certificates in the Secret's place",
            r.stdout + r.stderr)

    r = t.moat_run(["passwd", "--mosquitto", "-c", ini_path, "sensor-1"])
    t.check(r.returncode == 0, "moat passwd --mosquitto sensor-1",
            r.stderr)
    secret_files["passwd"] = r.stdout
    conf = info["conf_text"]
    for path, ref in info["broker_files"].items():
        place(path, ref)
        conf = conf.replace(" " + path, " " + root + path)
    conf = conf.replace("listener %s %s" % BROKER_LISTENER,
                        "listener %d 127.0.0.1" % broker_port)
    conf += "\nlog_type all\n"
    conf_path = t.write("broker-%s.conf" % name, conf)
    broker = mt.Proc(t, "mosquitto", ["mosquitto", "-c", conf_path],
                     t.path("mosquitto-%s.log" % name))
    up = mt.wait_for(lambda: "running" in broker.text() or
                     not broker.alive(), 10)
    t.check(up and broker.alive(), "Mosquitto starts with the ConfigMap's "
            "mosquitto.conf", mt.tail(broker.log))
    mt.wait_for(lambda: "Opening ipv4 listen socket" in broker.text(), 5)
    t.check("Opening ipv4 listen socket on port %d" % broker_port
            in broker.text() and broker.text().count("listen socket") == 1,
            "Mosquitto opens one listen socket, on loopback",
            mt.tail(broker.log))

    proc = mt.Proc(t, "moat", [moat, "-c", ini_path],
                   t.path("moat-%s.log" % name), env=t.moat_env())
    rx = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
    m = mt.wait_for(lambda: rx.search(proc.text()) or
                    (None if proc.alive() else "exited"), 10)
    t.check(m and m != "exited", "moat starts with the ConfigMap's moat.ini",
            mt.tail(proc.log))
    port = int(m.group(1))

    for path in ("/healthz", "/readyz"):
        got = mt.wait_for(lambda: http_get(admin_port, path)[0] == 200, 10)
        status, body = http_get(admin_port, path)
        t.check(got and status == 200, "moat's admin endpoint answers GET "
                "%s with 200, as the kubelet's probe expects" % path,
                "status %s: %s\n%s" % (status, body, mt.tail(proc.log)))

    r = t.moat_run(["passwd", "-c", ini_path, "sensor-1"])
    user, password = r.stdout.split()
    sub = mt.Sub(t, broker_port, "devices/sensor-1/#", 1, 1, "mqttv311",
                 "127.0.0.1", False, None, False, "watcher", "watcher",
                 broker, 20, extra=["-u", user, "-P", password])
    sub.wait_subscribed()
    r = t.pub(port, "devices/sensor-1/temp", "through the pod's moat",
              dev="sensor-1")
    t.check(r.returncode == 0, "sensor-1 publishes through moat", r.stderr)
    got = sub.result()
    t.check(got == ["through the pod's moat"], "the publish arrives at the "
            "broker's subscriber", "got %r" % got)
    r = t.pub(port, "devices/sensor-2/temp", "x", dev="sensor-2")
    t.check(r.returncode != 0, "sensor-2, not in the map, is refused")
    for p in (proc, broker):
        p.stop()


def kubectl_knows_components():
    """True when kubectl's kustomize builds Components (kubectl 1.21 and
    later embed kustomize 4 or later; 1.20 and older, kustomize 2)."""
    if shutil.which("kubectl") is None:
        return False
    r = subprocess.run(["kubectl", "version", "--client"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    m = re.search(r"Kustomize Version: v(\d+)", r.stdout)
    return m is not None and int(m.group(1)) >= 4


def workload(objs):
    return next(o for o in objs if o.get("kind") in WORKLOAD_KINDS)


def container(objs, name):
    return next(c for c in pod_spec(workload(objs))["containers"]
                if c["name"] == name)


def service(objs):
    return next(o for o in objs if o.get("kind") == "Service")


def moat_ini_map(objs):
    return next(o["data"] for o in objs if o.get("kind") == "ConfigMap"
                and "moat.ini" in o.get("data", {}))


def set_probe_path(objs, probe, path):
    container(objs, "moat")[probe]["httpGet"]["path"] = path


def set_grace(objs, seconds):
    pod_spec(workload(objs))["terminationGracePeriodSeconds"] = seconds


def expose_port(objs, port, target):
    service(objs)["spec"]["ports"].append(
        {"name": "extra", "port": port, "targetPort": target})


def edit_ini(objs, old, new):
    d = moat_ini_map(objs)
    if old not in d["moat.ini"]:
        raise mt.Failure("moat.ini has no %r to change" % old)
    d["moat.ini"] = d["moat.ini"].replace(old, new)


def tcp_liveness(objs):
    container(objs, "moat")["livenessProbe"] = {"tcpSocket":
                                                {"port": "mqtts"}}


def drop_volume(objs, name):
    spec = pod_spec(workload(objs))
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] != name]


def sub_path(objs, name):
    for m in container(objs, "moat")["volumeMounts"]:
        if m["name"] == name:
            m["subPath"] = "tls.crt"


# Mutations each check must catch: (what, change, words of the problem).
COMMON_TWINS = [
    ("readiness probe on /", lambda o: set_probe_path(o, "readinessProbe",
                                                      "/"), "readinessProbe"),
    ("liveness probe on /readyz", lambda o: set_probe_path(
        o, "livenessProbe", "/readyz"), "livenessProbe"),
    ("liveness probe by TCP", tcp_liveness, "livenessProbe"),
    ("grace period 10 s", lambda o: set_grace(o, 10),
     "terminationGracePeriodSeconds 10"),
    ("grace period 22 s, the drain and no linger",
     lambda o: set_grace(o, 22), "terminationGracePeriodSeconds 22"),
    ("drain_timeout 60s, longer than the grace period", lambda o: edit_ini(
        o, "drain_timeout = 20s", "drain_timeout = 60s"), "drain_timeout"),
    ("drain_timeout unset, so 20s", lambda o: (edit_ini(
        o, "drain_timeout = 20s", ""), set_grace(o, 21)),
     "terminationGracePeriodSeconds 21"),
    ("the admin port in the Service", lambda o: expose_port(
        o, ADMIN_PORT, "admin"), "admin port"),
    ("plaintext 1883 in the Service", lambda o: expose_port(o, 1883, 1883),
     "plaintext"),
    ("[admin] on loopback", lambda o: edit_ini(
        o, "address = 0.0.0.0:9883", "address = 127.0.0.1:9883"),
     "kubelet"),
    ("[admin] on another port", lambda o: edit_ini(
        o, "address = 0.0.0.0:9883", "address = 0.0.0.0:9884"),
     "[admin] address"),
    ("the TLS Secret's volume gone", lambda o: drop_volume(o, "moat-tls"),
     "not a volume"),
    ("the TLS Secret mounted by subPath", lambda o: sub_path(o, "moat-tls"),
     "subPath"),
    ("moat may gain privileges", lambda o: container(o, "moat")[
        "securityContext"].update(allowPrivilegeEscalation=True),
     "allowPrivilegeEscalation"),
]
BASE_TWINS = [
    ("the broker's preStop sleep shorter than the drain", lambda o: container(
        o, "broker")["lifecycle"]["preStop"]["exec"].update(
            command=["sleep", "5"]), "preStop sleeps 5"),
]
SIDECAR_TWINS = [
    ("the broker's container changed", lambda o: container(
        o, "mosquitto").update(image="eclipse-mosquitto:2"),
     "not unchanged"),
    ("the Service's ports merged, not replaced", lambda o: service(o)[
        "spec"]["ports"].insert(0, {"name": "mqtt", "port": 1883,
                                    "targetPort": 1883}), "plaintext"),
]


def rejecting_twins(t, objs, layout, twins):
    """Each mutated copy of objs is refused, naming the problem."""
    for what, change, words in twins:
        bad = copy.deepcopy(objs)
        change(bad)
        c = Checker(t, bad, layout, report=False)
        c.run()
        t.check(any(words in p for p in c.problems),
                "%s with %s is refused (%s)" % (layout.label, what, words),
                "problems: %s" % c.problems)


def builder_refuses(t):
    """build() fails on a kustomization field it does not build."""
    work = t.path("unknown-field")
    shutil.copytree(SIDECAR_SAMPLE, work)
    with open(os.path.join(work, "kustomization.yaml"), "a") as f:
        f.write("namePrefix: x-\n")
    try:
        build(work)
    except mt.Failure as e:
        t.check("namePrefix" in str(e), "the builder refuses a field it "
                "does not build (namePrefix)", str(e))
    else:
        t.fail("the builder ignored namePrefix")


def comparable(objs):
    """objs without kustomize's hash suffixes, lists of named elements
    sorted by name, objects sorted by kind and name."""
    text = json.dumps(objs, sort_keys=True)
    for o in objs:
        name = o["metadata"]["name"]
        m = re.fullmatch(r"(.+)-[a-z0-9]{10}", name)
        if o.get("kind") == "ConfigMap" and m:
            text = text.replace('"%s"' % name, '"%s"' % m.group(1))

    def tidy(x):
        if isinstance(x, dict):
            return {k: tidy(v) for k, v in x.items()}
        if isinstance(x, list):
            x = [tidy(e) for e in x]
            if x and all(isinstance(e, dict) and "name" in e for e in x):
                x.sort(key=lambda e: e["name"])
            return x
        return x
    return sorted((tidy(o) for o in json.loads(text)),
                  key=lambda o: (o["kind"], o["metadata"]["name"]))


def same_as_kubectl(t, built, rendered, what):
    a, b = comparable(built), comparable(rendered)
    t.check(a == b, "this test builds %s as kubectl kustomize does (up to "
            "hash suffixes and order)" % what,
            "built:\n%s\nkubectl:\n%s" % (json.dumps(a, indent=1),
                                              json.dumps(b, indent=1)))


def check_sample(t, base_info):
    sample_deploy = load_yaml_docs(os.path.join(SIDECAR_SAMPLE,
                                                "deployment.yaml"))[0]
    orig = copy.deepcopy(next(c for c in pod_spec(sample_deploy)[
        "containers"] if c["name"] == "mosquitto"))
    layout = Layout("the sidecar sample", broker="mosquitto",
                    broker_orig=orig, acl=False)
    objs = build(SIDECAR_SAMPLE)
    info = Checker(t, objs, layout).run()
    t.check(info["tls_secret"] == base_info["tls_secret"],
            "the Component mounts the same TLS Secret as the base (%s)"
            % base_info["tls_secret"])
    if kubectl_knows_components():
        t.step("kubectl kustomize output of the sidecar sample")
        rendered = kubectl_build(SIDECAR_SAMPLE)
        Checker(t, rendered,
                Layout("kubectl kustomize of the sidecar sample",
                       broker="mosquitto", broker_orig=orig,
                       acl=False)).run()
        same_as_kubectl(t, objs, rendered, "the sidecar sample")
    else:
        mt.say("    note: no kubectl with Components (1.21 or later); "
               "checking the sample as this test builds it only")
    t.step("rejecting twins of the sidecar sample")
    rejecting_twins(t, objs, layout, COMMON_TWINS + SIDECAR_TWINS)
    builder_refuses(t)
    return info


def main(t):
    t.step("kustomize base %s, built as kustomize does" % KDIR)
    base_layout = Layout("the base")
    base_objs = build(KDIR)
    info = Checker(t, base_objs, base_layout).run()
    rendered = kubectl_build(KDIR)
    if rendered is None:
        mt.say("    note: kubectl not installed; checking the base as this "
               "test builds it only")
    else:
        t.step("kubectl kustomize output")
        Checker(t, rendered, Layout("kubectl kustomize")).run()
        same_as_kubectl(t, base_objs, rendered, "the base")
    t.step("rejecting twins of the base")
    rejecting_twins(t, base_objs, base_layout, COMMON_TWINS + BASE_TWINS)
    t.step("the sidecar Component on %s" % SIDECAR_SAMPLE)
    sample = check_sample(t, info)
    t.step("examples/certificate.yaml")
    check_certificate(t, info["tls_secret"])
    t.step("yamllint")
    check_yamllint(t)
    t.step("the ConfigMap's files with moat and Mosquitto")
    files_work(t, info, "base")
    if sample["ini_text"] != info["ini_text"] or \
            sample["conf_text"] != info["conf_text"]:
        t.step("the sidecar Component's moat.ini with the sample's "
               "mosquitto.conf")
        files_work(t, sample, "sidecar")


if __name__ == "__main__":
    mt.run(main, "t_k8s_manifests")
