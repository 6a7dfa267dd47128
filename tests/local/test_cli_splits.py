"""`pixcrawler crawl --splits/--split-seed`: parsed into the export's options, bad values refused in one sentence
before any stack starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixcrawler_local.cli import _export_options, _parser, main


def test_splits_and_seed_become_the_export_options() -> None:
    splits = "train=0.8, validation=0.1,test=0.1"
    args = _parser().parse_args(["crawl", "cats", "--splits", splits, "--split-seed", "7"])
    assert _export_options(args) == {
        "layout": "by_keyword",
        "splits": {"train": 0.8, "validation": 0.1, "test": 0.1},
        "split_seed": 7,
    }
    assert _export_options(_parser().parse_args(["crawl", "cats"])) == {"layout": "by_keyword"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--splits", "train=0.8,test"], "'test' is not NAME=FRACTION"),
        (["--splits", "train=0.8,test=lots"], "'test=lots' is not NAME=FRACTION"),
        (["--splits", "train=0.5,train=0.5"], "split 'train' is named twice"),
        (["--splits", "train=0.5,Train=0.5"], "differ only in letter case"),
        (["--splits", "train=0.8,test=0.1"], "split fractions sum to 0.9; they must sum to 1"),
        (["--splits", "train=1.2,test=-0.2"], "each fraction must be above 0"),
        (["--splits", "../up=1"], "split name '../up' must be"),
        (["--splits", "con=1"], "not be a Windows device name"),
        (["--splits", "train=1", "--split-seed", "-1"], "--split-seed -1: Input should be greater than or equal to 0"),
        (["--split-seed", "3"], "--split-seed needs --splits"),
    ],
)
def test_bad_splits_are_refused_with_a_clear_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as stopped:
        raise SystemExit(main(["crawl", "cats", "--data-dir", f"{tmp_path}/never", *argv]))
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
