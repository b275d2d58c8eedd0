"""Configuration YAML read by libyaml keeps every line an error needs, and reads scalars as YAML 1.2."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from watcher.config.yamlcheck import Validator
from watcher.config.yamlload import YamlSyntaxError, load_config_yaml

TEXT = """\
# comment
trials:
  - NCT00000001
  - id: NCT00000002
    label: yes
    tags: [a, b]
defaults: &d
  interval: 6h
other:
  <<: *d
  count: 010
  ratio: 1e3
  off: off
"""


def test_lines_of_keys_and_items_match_ruamel_round_trip() -> None:
    fast, slow = load_config_yaml(TEXT), YAML(typ="rt").load(TEXT)
    for doc in (fast, slow):
        items = doc["trials"]
        assert [Validator.line_of(items, i) for i in range(2)] == [3, 4]
        assert Validator.line_of(doc, "other") == 9
        assert Validator.line_of(items[1], "tags") == 6
        assert Validator.line_of(doc["other"], "count") == 11


def test_scalars_resolve_as_yaml_1_2_like_the_round_trip_loader() -> None:
    fast, slow = load_config_yaml(TEXT), YAML(typ="rt").load(TEXT)
    assert fast == slow
    assert fast["trials"][1]["label"] == "yes"
    assert fast["other"] == {"interval": "6h", "count": 10, "ratio": 1000.0, "off": "off"}


def test_a_key_given_twice_is_an_error_at_its_second_line() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        load_config_yaml("a: 1\nb: 2\na: 3\n")
    assert caught.value.line == 3
    assert "duplicate key 'a' (first at line 1)" in caught.value.problem


def test_syntax_error_names_its_line() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        load_config_yaml("trials:\n  - NCT00000001\n  - [unclosed\n")
    assert caught.value.line is not None
    assert caught.value.line >= 3


def test_empty_document_is_none_and_a_shared_node_is_built_once() -> None:
    assert load_config_yaml("# nothing\n") is None
    doc = load_config_yaml("a: &x [1, 2]\nb: *x\n")
    assert doc["a"] is doc["b"]
