"""Validating a manifest against the dask-kubernetes operator's own CRD schema, offline.

The CRD sources in the ``dask-kubernetes`` wheel give their schemas as ``$ref``s into its
``templates.yaml``, which in turn refers to Kubernetes' PodSpec and ServiceSpec in the
``k8s_crd_resolver`` package (not on PyPI); those are read from kubernetes-validate's strict
definitions of the Kubernetes version the other manifests are checked against. Fields a
schema does not name are errors, as the API server's pruning would silently drop them.
"""

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

Schema = dict[str, Any]
CRD_DIRECTORY = files("dask_kubernetes") / "operator" / "customresources"
CRD_FILES = {"DaskCluster": "daskcluster.yaml", "DaskJob": "daskjob.yaml"}


@cache
def _kubernetes_definitions(version: str) -> Schema:
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    strict = json.loads((root / f"v{version}.0-local-strict" / "_definitions.json").read_text())
    # k8s_crd_resolver names them under definitions/, kubernetes-validate under $defs/
    return {"definitions": strict["$defs"], "$defs": strict["$defs"]}


@cache
def _document(uri: str, version: str) -> Schema:
    if uri.startswith("python://dask_kubernetes/"):
        path = uri.removeprefix("python://dask_kubernetes/")
        return dict(yaml.safe_load(files("dask_kubernetes").joinpath(path).read_text()))
    if uri.startswith("python://k8s_crd_resolver/"):
        return _kubernetes_definitions(version)
    raise ValueError(f"unexpected schema reference {uri}")


def _inlined(schema: Any, document: str, version: str, depth: int = 0) -> Any:
    """``schema`` with every ``$ref`` replaced by its target, objects closed to unknown
    fields (unless they keep them on purpose)."""
    if depth > 60:
        raise RecursionError("schema references nest too deep")
    if isinstance(schema, list):
        return [_inlined(item, document, version, depth + 1) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        uri, _, pointer = str(schema["$ref"]).partition("#")
        uri = uri or document
        target: Any = _document(uri, version)
        for part in pointer.strip("/").split("/"):
            target = target[part]
        return _inlined(target, uri, version, depth + 1)
    inlined = {key: _inlined(value, document, version, depth + 1) for key, value in schema.items()}
    keeps_unknown = schema.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in inlined and "additionalProperties" not in inlined and not keeps_unknown:
        inlined["additionalProperties"] = False
    return inlined


@cache
def crd_schema(kind: str, version: str) -> tuple[str, Schema]:
    """The ``apiVersion`` and the fully resolved schema of an operator kind."""
    crd = yaml.safe_load(CRD_DIRECTORY.joinpath(CRD_FILES[kind]).read_text())
    (served,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    api_version = f"{crd['spec']['group']}/{served['name']}"
    schema = _inlined(served["schema"]["openAPIV3Schema"], "", version)
    schema["properties"] = {  # what every object has besides the CRD's own fields
        "apiVersion": {"const": api_version},
        "kind": {"const": kind},
        "metadata": {"type": "object"},
        **schema["properties"],
    }
    return api_version, schema


def validate_operator_object(manifest: Schema, version: str) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``manifest`` is a valid operator object."""
    _, schema = crd_schema(manifest["kind"], version)
    jsonschema.Draft202012Validator(schema).validate(manifest)
