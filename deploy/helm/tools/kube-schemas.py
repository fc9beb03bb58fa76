#!/usr/bin/env python3
"""Offline Kubernetes JSON schemas for kubeconform, from the wheel of the PyPI package kubernetes-validate.

    kube-schemas.py <kubernetes_validate-*.whl> <out-dir> <minor,minor,...> <kind-group-version,...>

The wheel ships, per Kubernetes version, one schema per kind that refers to a shared _definitions.json by an
absolute path ("/api/_definitions.json#/$defs/…"), which kubeconform cannot follow from a local directory. Each
schema asked for is made standalone: the definitions it reaches are copied into its own "$defs" and the references
rewritten to "#/$defs/…". Written as <out-dir>/v1.<minor>.0-standalone-strict/<kind>-<group>-<version>.json, the
layout kubeconform's -schema-location template names ({{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/
{{ .ResourceKind }}{{ .KindSuffix }}.json). The "-strict" schemas refuse unknown fields.
"""
import json
import os
import re
import sys
import zipfile

SHARED = "/api/_definitions.json#/$defs/"
LOCAL = "#/$defs/"


def references(node, found):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            references(value, found)
    elif isinstance(node, list):
        for value in node:
            references(value, found)


def main():
    wheel, out, minors, kinds = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4].split(",")
    archive = zipfile.ZipFile(wheel)
    base = "kubernetes_validate/kubernetes-json-schema"
    for minor in minors:
        source = f"{base}/v1.{minor}.0-local-strict"
        target = os.path.join(out, f"v1.{minor}.0-standalone-strict")
        os.makedirs(target, exist_ok=True)
        definitions = json.loads(archive.read(f"{source}/_definitions.json"))["$defs"]
        for kind in kinds:
            try:
                text = archive.read(f"{source}/{kind}.json").decode()
            except KeyError:
                sys.exit(f"kube-schemas: Kubernetes 1.{minor} has no schema {kind} in {wheel}")
            schema = json.loads(text.replace(SHARED, LOCAL))
            schema.pop("$id", None)
            needed, queue = set(), set()
            references(schema, queue)
            while queue:
                name = queue.pop()
                if name in needed:
                    continue
                if name not in definitions:
                    sys.exit(f"kube-schemas: {kind} (1.{minor}) refers to {name}, which _definitions.json lacks")
                needed.add(name)
                references(definitions[name], queue)
            schema["$defs"] = {name: definitions[name] for name in sorted(needed)}
            with open(os.path.join(target, f"{kind}.json"), "w") as handle:
                json.dump(schema, handle)


if __name__ == "__main__":
    main()
