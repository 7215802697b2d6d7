"""The byte-identity script (benchmarks/bytes.py) must not rot: one small case runs here."""

import json
import os

from benchmarks import bytes as byte_identity


def test_one_case_digests_its_output_and_a_check_names_a_difference(tmp_path, capsys):
    case = "oip"
    cache_setting = os.environ.get("JAXDREAM_NO_CACHE")
    record = byte_identity.run_cases([case])
    assert os.environ.get("JAXDREAM_NO_CACHE") == cache_setting  # left as it was
    (digests,) = record[case].values()
    assert len(digests) == 64 and int(digests, 16) >= 0
    saved = tmp_path / "digests.json"
    saved.write_text(json.dumps(record))
    assert byte_identity.main(["--case", case, "--check", str(saved)]) == 0
    saved.write_text(json.dumps({case: {"pattern.png": "0" * 64}}))
    assert byte_identity.main(["--case", case, "--check", str(saved)]) == 1
    assert f"differs: {case}" in capsys.readouterr().err
    # a case the later record lacks differs; one added since the earlier record does not
    assert byte_identity.differences({"a": {"x": "1"}, "c": {}}, {"a": {"x": "1"}}) == ["c"]
    assert byte_identity.differences({"a": {"x": "1"}}, {"a": {"x": "1"}, "b": {}}) == []
