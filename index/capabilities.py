"""What the connected Elasticsearch can do, so mapping, scripts and fusion adapt to it.

The local `integ-test-zip` node is server-only (no analysis-common, painless, reindex, RRF);
the production image has all of them plus analysis-icu and analysis-smartcn. Code asks this
module instead of assuming either.
"""

from __future__ import annotations

from dataclasses import dataclass

from elasticsearch import Elasticsearch

#: Licences that cover the `rrf` retriever (Elastic's subscription matrix: Enterprise; a trial has all).
RRF_LICENSES = frozenset({"enterprise", "trial"})


@dataclass(frozen=True)
class Capabilities:
    version: str
    modules: frozenset[str]
    plugins: frozenset[str]
    license: str = "unknown"  # the node's licence type (basic, trial, enterprise, ...)

    def has(self, name: str) -> bool:
        return name in self.modules or name in self.plugins

    @property
    def language_analyzers(self) -> bool:
        """german/english analyzers, stemmers and folding come from analysis-common."""
        return self.has("analysis-common")

    @property
    def smartcn(self) -> bool:
        return self.has("analysis-smartcn")

    @property
    def icu(self) -> bool:
        return self.has("analysis-icu")

    @property
    def scripts(self) -> bool:
        return self.has("lang-painless")

    @property
    def reindex(self) -> bool:
        return self.has("reindex")

    @property
    def rrf(self) -> bool:
        """The server fuses with the `rrf` retriever only when it has the module *and* a licence that
        allows it (a basic licence refuses it); otherwise the client fuses, as on the local node."""
        return self.has("rank-rrf") and self.license in RRF_LICENSES

    def summary(self) -> dict[str, bool]:
        return {
            "language_analyzers": self.language_analyzers,
            "smartcn": self.smartcn,
            "icu": self.icu,
            "scripts": self.scripts,
            "reindex": self.reindex,
            "rrf": self.rrf,
        }


def detect(client: Elasticsearch) -> Capabilities:
    """Union of modules and plugins over all nodes (a feature counts only if every node has it)."""
    info = client.nodes.info(metric="plugins")
    nodes = list(info.get("nodes", {}).values())
    if not nodes:
        raise RuntimeError("Elasticsearch reported no nodes")
    module_sets = [frozenset(m["name"] for m in node.get("modules", [])) for node in nodes]
    plugin_sets = [frozenset(p["name"] for p in node.get("plugins", [])) for node in nodes]
    return Capabilities(
        version=str(nodes[0].get("version", "unknown")),
        modules=frozenset.intersection(*module_sets),
        plugins=frozenset.intersection(*plugin_sets),
        license=_license(client),
    )


def _license(client: Elasticsearch) -> str:
    """The licence type, "unknown" where the node does not say (no x-pack licence API)."""
    try:
        info = client.license.get()
    except Exception:  # an OSS build or a proxy without the endpoint: assume nothing
        return "unknown"
    return str(info.get("license", {}).get("type") or "unknown").lower()
