// SPDX-License-Identifier: MIT
//
// Validate Kubernetes objects in YAML files against the API schemas that
// kubernetes-models (OpenAPI of Kubernetes) and @kubernetes-models/cert-manager
// bundle: types, required fields, enums and formats, offline.
//
//   node validate.mjs FILE.yaml...
//
// Every document must be a kind these packages know. Prints one line per
// object and exits 1 if any is invalid.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/")
    ? apiVersion.split("/")
    : ["", apiVersion];
  const candidates = [];
  if (group === "") candidates.push(`kubernetes-models/${version}`);
  else if (group.endsWith("cert-manager.io"))
    candidates.push(`@kubernetes-models/cert-manager/${group}/${version}`);
  else candidates.push(`kubernetes-models/${group}/${version}`);
  for (const c of candidates) {
    try {
      const mod = await import(c);
      if (mod[kind]) return mod[kind];
    } catch (e) {
      if (e.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED" && e.code !== "ERR_MODULE_NOT_FOUND") throw e;
    }
  }
  return null;
}

let bad = 0;
let n = 0;
for (const file of process.argv.slice(2)) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) {
      console.log(`${file}: YAML error: ${doc.errors[0].message}`);
      bad++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue;
    n++;
    const what = `${file}: ${obj.apiVersion}/${obj.kind} ${obj.metadata?.name ?? "(no name)"}`;
    const Model = obj.apiVersion && obj.kind ? await modelFor(obj.apiVersion, obj.kind) : null;
    if (!Model) {
      console.log(`${what}: INVALID: no schema for this apiVersion and kind`);
      bad++;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`${what}: valid`);
    } catch (e) {
      bad++;
      console.log(`${what}: INVALID`);
      for (const err of e.errors ?? [{ message: e.message }]) {
        console.log(`    ${err.instancePath ?? ""} ${err.message}${err.params ? " " + JSON.stringify(err.params) : ""}`);
      }
    }
  }
}
console.log(`schema-check: ${n} object(s), ${bad} invalid`);
process.exit(bad === 0 && n > 0 ? 0 : 1);
