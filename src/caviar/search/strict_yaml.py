"""YAML read as a config means it: a key given twice in one table (a section too) is an error,
not the last one silently winning, and numbers are read without YAML 1.1's base 60 (``1:20`` is
the text '1:20', which the config then refuses, not the integer 80).

PyYAML's ``safe_load`` keeps the last of two equal keys and reads ``1:20`` as 80; its loader is
extended here rather than replaced: the same safe constructors, one stricter mapping, and the
implicit int and float rules without their sexagesimal forms.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError

INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"


class StrictLoader(yaml.SafeLoader):  # type: ignore[misc]  # pyyaml ships no types
    """``yaml.SafeLoader`` that refuses a key given twice and reads no base-60 numbers."""


def _mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, str | int | float | bool):
            continue  # an unhashable key: construct_mapping says so
        line = key_node.start_mark.line + 1
        if key in first_line:
            raise ConstructorError(
                None,
                None,
                f"the key {key!r} is given twice (lines {first_line[key]} and {line}); "
                "give it once",
                key_node.start_mark,
            )
        first_line[key] = line
    return dict(loader.construct_mapping(node))


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
# the implicit rules of SafeLoader, less int and float, which come back below without base 60
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rule) for tag, rule in rules if tag not in (INT, FLOAT)]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(
    FLOAT,
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
        |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)
StrictLoader.add_implicit_resolver(
    INT,
    re.compile(
        r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0[0-7_]+
        |[-+]?(?:0|[1-9][0-9_]*)
        |[-+]?0x[0-9a-fA-F_]+)$""",
        re.X,
    ),
    list("-+0123456789"),
)


def load(text: str) -> Any:
    """The YAML document in ``text``, read strictly (see the module's docstring)."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506: a SafeLoader, made stricter
