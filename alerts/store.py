"""Where rules live: YAML files in the rules folder (reviewed like code) and rules saved from the
web UI in the `<prefix>-rules` index. Both are validated the same way; a bad rule is reported with
its origin and never hides the good ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from elasticsearch import Elasticsearch, NotFoundError

from alerts.rules import Rule, RuleProblem, load_rule_dir, validate_rule
from index.mapping import RULES_MAPPING, ensure_index, rules_index
from newsradar.settings import Settings


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # rule name -> file or index it came from

    def get(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)


def ensure_rules_index(client: Elasticsearch, settings: Settings) -> str:
    return ensure_index(client, rules_index(settings), RULES_MAPPING)


class RuleConflict(ValueError):
    """A saved rule may not take the name of a rule file: the file would win and the saved rule
    would never run."""


def save_rule(client: Elasticsearch, settings: Settings, rule: Rule) -> None:
    """Create or replace the saved rule with this name (the name is the document id); RuleConflict
    when a rule file defines the name already."""
    if settings.rules_dir.exists():
        files, _ = load_rule_dir(settings.rules_dir)
        clash = next((str(path) for existing, path in files if existing.name == rule.name), None)
        if clash is not None:
            raise RuleConflict(f"rule {rule.name!r} is defined in {clash}; save it under another name")
    index = ensure_rules_index(client, settings)
    client.index(
        index=index,
        id=rule.name,
        document={
            "name": rule.name,
            "owner": rule.owner,
            "updated_at": datetime.now(UTC).isoformat(),
            "rule": rule.model_dump(mode="json"),
        },
        refresh="wait_for",
    )


def delete_rule(client: Elasticsearch, settings: Settings, name: str) -> bool:
    try:
        client.delete(index=rules_index(settings), id=name, refresh="wait_for")
    except NotFoundError:
        return False
    return True


def load_stored_rules(client: Elasticsearch, settings: Settings) -> tuple[list[Rule], list[RuleProblem]]:
    index = rules_index(settings)
    if not client.indices.exists(index=index):
        return [], []
    rules: list[Rule] = []
    problems: list[RuleProblem] = []
    search_after: list[str] | None = None
    while True:
        page = client.search(
            index=index, size=500, sort=[{"name": "asc"}], search_after=search_after, query={"match_all": {}}
        )
        hits = page["hits"]["hits"]
        for hit in hits:
            rule, found = validate_rule(hit["_source"].get("rule"), f"{index}/{hit['_id']}")
            problems.extend(found)
            if rule is not None:
                rules.append(rule)
        if len(hits) < 500:
            return rules, problems
        search_after = hits[-1]["sort"]


def load_rules(client: Elasticsearch | None, settings: Settings, rules_dir: Path | None = None) -> RuleSet:
    """Files first, then saved rules; a name defined twice keeps the first and reports the second."""
    folder = rules_dir or settings.rules_dir
    result = RuleSet()
    file_rules, file_problems = load_rule_dir(folder) if folder.exists() else ([], [])
    result.problems.extend(file_problems)
    stored: list[Rule] = []
    if client is not None:
        stored, stored_problems = load_stored_rules(client, settings)
        result.problems.extend(stored_problems)
    origins = [(rule, str(file)) for rule, file in file_rules] + [(r, rules_index(settings)) for r in stored]
    for rule, origin in origins:
        if rule.name in result.origins:
            result.problems.append(
                RuleProblem(
                    origin, "name", f"rule {rule.name!r} is already defined in {result.origins[rule.name]}"
                )
            )
            continue
        result.origins[rule.name] = origin
        result.rules.append(rule)
    return result
