"""Reading configuration files: a broken file is named with what is wrong and where, never with its lines."""

from __future__ import annotations

import pytest

from services.common.config_files import load_yaml
from services.common.errors import ConfigError


@pytest.mark.parametrize(
    "text, where",
    [
        ("password: hunter2: x\n", "line 1, column 18"),  # a mapping inside a plain value
        ("a: 1\nkey: 'hunter2\n", "line 3"),  # a quote never closed: the scanner reaches the end
        ("- hunter2\nb: 2\n", "line 2, column 1"),  # a list, then a mapping
    ],
)
def test_a_file_that_is_not_yaml_is_named_with_the_place_and_never_quoted(tmp_path, text, where):
    path = tmp_path / "secret.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_yaml(path)
    assert refused.value.source == str(path)
    assert refused.value.reason.startswith("not valid YAML: ") and where in refused.value.reason, refused.value
    assert "hunter2" not in str(refused.value)
