#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Kubernetes manifests (packaging/kubernetes) hold what an operator
relies on, and their configuration files work.

The kustomize base is loaded the way kustomize builds it (resources, the
configMapGenerator files, the images rewrite); where kubectl is on PATH its
own "kubectl kustomize" output is checked the same way. Then:

  objects      a Deployment, a Service, the generated ConfigMaps; nothing
               else (the cert-manager example stays out of the base)
  pod          runAsNonRoot, seccompProfile RuntimeDefault, no host
               network, no service account token, a grace period longer
               than moat's 30 s drain
  containers   each: an image with a pinned tag, allowPrivilegeEscalation
               false, readOnlyRootFilesystem, every capability dropped and
               none added, cpu and memory requests and limits, no hostPort
  moat         port 8883, readiness and liveness TCP probes on it, -c naming
               moat.ini in its ConfigMap; every file moat.ini names (cert,
               key, ca, map, hmac_secret_file, ...) is a key of a volume
               mounted at that directory, cert/key/ca being tls.crt,
               tls.key and ca.crt of one Secret (cert-manager's layout);
               the backend is loopback and is the broker's listener
  broker       no ports, no probes; its mosquitto.conf has exactly one
               listener, "listener 1883 127.0.0.1", no port/bind_address,
               allow_anonymous false, password_file and acl_file in mounted
               volumes; the ACL is "pattern readwrite devices/%u/#"
  service      exposes 8883 only, to the moat container's port, and selects
               the pod
  certificate  examples/certificate.yaml writes the Secret moat mounts, for
               "server auth", from an Issuer it defines
  yamllint     strict, with packaging/yamllint.yaml (when installed)
  files work   moat --check accepts the ConfigMap's moat.ini (paths moved
               under the test directory, test certificates in the Secret's
               place), Mosquitto starts with the ConfigMap's mosquitto.conf,
               and a device's publish through moat arrives at a subscriber
               on that broker (when moat and Mosquitto are available)

Needs python3-yaml (skips without it)."""

import os
import re
import shutil
import subprocess
import sys

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

DEVICE_PORT = 8883
BROKER_LISTENER = ("1883", "127.0.0.1")
DRAIN_SECONDS = 30
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


def build_base(kdir):
    """Objects of the kustomize base, built the way kustomize does for
    the features the base uses: resources, configMapGenerator (files,
    KEY=PATH too) and images. Generated names keep no hash suffix."""
    k = load_yaml_docs(os.path.join(kdir, "kustomization.yaml"))[0]
    known = {"apiVersion", "kind", "resources", "configMapGenerator",
             "images"}
    extra = set(k) - known
    if extra:
        raise mt.Failure("kustomization.yaml uses %s, which this test does "
                         "not build: extend build_base()" % sorted(extra))
    objs = []
    for r in k.get("resources", []):
        objs += load_yaml_docs(os.path.join(kdir, r))
    for g in k.get("configMapGenerator", []):
        data = {}
        for spec in g.get("files", []):
            key, _, path = spec.rpartition("=")
            data[key or os.path.basename(path)] = read(
                os.path.join(kdir, path))
        objs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": g["name"]}, "data": data})
    images = {i["name"]: i for i in k.get("images", [])}
    for o in objs:
        if o.get("kind") != "Deployment":
            continue
        for c in pod_spec(o).get("containers", []):
            name, tag = split_image(c.get("image", ""))
            if name in images:
                im = images[name]
                c["image"] = "%s:%s" % (im.get("newName", name),
                                        im.get("newTag", tag or "latest"))
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

class Checker:
    def __init__(self, t, objs, label):
        self.t = t
        self.objs = objs
        self.label = label
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
        t = self.t
        kinds = sorted(o.get("kind", "?") for o in self.objs)
        self.need(set(kinds) <= {"Deployment", "Service", "ConfigMap"},
                  "the base has objects other than a Deployment, a Service "
                  "and ConfigMaps: %s" % kinds)
        dep = self.one("Deployment")
        svc = self.one("Service")
        if dep is None or svc is None:
            return None
        pod = pod_spec(dep)
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
        grace = pod.get("terminationGracePeriodSeconds", 30)
        self.need(grace > DRAIN_SECONDS,
                  "pod: terminationGracePeriodSeconds %s is not longer than "
                  "moat's %d s drain" % (grace, DRAIN_SECONDS))
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        containers = {c["name"]: c for c in pod.get("containers", [])}
        self.need(set(containers) == {"moat", "broker"},
                  "pod: containers are %s, not moat and broker"
                  % sorted(containers))
        for c in containers.values():
            self.container_basics(pod, c)
        moat, broker = containers.get("moat"), containers.get("broker")
        if moat is None or broker is None:
            return None

        # moat: port, probes, its configuration
        ports = moat.get("ports", [])
        self.need([p.get("containerPort") for p in ports] == [DEVICE_PORT],
                  "moat: container ports are %s, not [%d]"
                  % ([p.get("containerPort") for p in ports], DEVICE_PORT))
        named = {p.get("name"): p.get("containerPort") for p in ports}
        for probe in ("readinessProbe", "livenessProbe"):
            pr = moat.get(probe, {})
            port = pr.get("tcpSocket", {}).get("port")
            self.need(named.get(port, port) == DEVICE_PORT,
                      "moat: %s is not a TCP probe on %d: %s"
                      % (probe, DEVICE_PORT, pr))
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

        # the broker
        self.need(not broker.get("ports"),
                  "broker: exposes container ports %s" % broker.get("ports"))
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

        # the service
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
        labels = dep["spec"]["template"].get("metadata", {}).get("labels", {})
        sel = sp.get("selector", {})
        self.need(sel and all(labels.get(k) == v for k, v in sel.items()),
                  "service: selector %s does not select the pod %s"
                  % (sel, labels))

        if self.problems:
            for p in self.problems:
                mt.say("    problem (%s): %s" % (self.label, p))
            raise mt.Failure("%d problem(s) in %s" % (len(self.problems),
                                                       self.label))
        t.ok("%s: pod, containers, probes, volumes, moat.ini, mosquitto.conf "
             "and service hold what an operator relies on" % self.label)
        return {"moat": moat, "broker": broker, "volumes": volumes,
                "ini_path": ini_path, "ini_text": ini_text,
                "conf_path": conf_path, "conf_text": conf_text,
                "moat_files": files, "broker_files": broker_files,
                "tls_secret": next(iter(secret_of.values()), None),
                "checker": self}


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


def files_work(t, info):
    """Run moat --check, Mosquitto and moat with the ConfigMap's files."""
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
    root = t.path("root")
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
    ini = info["ini_text"]
    for path, ref in info["moat_files"].items():
        place(path, ref)
        ini = ini.replace(" " + path, " " + root + path)
    ini = re.sub(r"(?m)^address = [0-9.*]+:%d$" % DEVICE_PORT,
                 "address = 127.0.0.1:0", ini)
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
    conf_path = t.write("broker.conf", conf)
    broker = mt.Proc(t, "mosquitto", ["mosquitto", "-c", conf_path],
                     t.path("mosquitto.log"))
    up = mt.wait_for(lambda: "running" in broker.text() or
                     not broker.alive(), 10)
    t.check(up and broker.alive(), "Mosquitto starts with the ConfigMap's "
            "mosquitto.conf", mt.tail(broker.log))
    mt.wait_for(lambda: "Opening ipv4 listen socket" in broker.text(), 5)
    t.check("Opening ipv4 listen socket on port %d" % broker_port
            in broker.text() and broker.text().count("listen socket") == 1,
            "Mosquitto opens one listen socket, on loopback",
            mt.tail(broker.log))

    proc = mt.Proc(t, "moat", [moat, "-c", ini_path], t.path("moat.log"),
                   env=t.moat_env())
    rx = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
    m = mt.wait_for(lambda: rx.search(proc.text()) or
                    (None if proc.alive() else "exited"), 10)
    t.check(m and m != "exited", "moat starts with the ConfigMap's moat.ini",
            mt.tail(proc.log))
    port = int(m.group(1))

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


def main(t):
    t.step("kustomize base %s, built as kustomize does" % KDIR)
    info = Checker(t, build_base(KDIR), "the base").run()
    rendered = kubectl_build(KDIR)
    if rendered is None:
        mt.say("    note: kubectl not installed; checking the base as this "
               "test builds it only")
    else:
        t.step("kubectl kustomize output")
        Checker(t, rendered, "kubectl kustomize").run()
    t.step("examples/certificate.yaml")
    check_certificate(t, info["tls_secret"])
    t.step("yamllint")
    check_yamllint(t)
    t.step("the ConfigMap's files with moat and Mosquitto")
    files_work(t, info)


if __name__ == "__main__":
    mt.run(main, "t_k8s_manifests")
