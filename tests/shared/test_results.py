"""Rewriting one section of docs/results.md, and the facts each section states."""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tryon.shared import results
from tryon.shared.results import (
    RunFacts,
    command_line,
    commit_description,
    cpu_model,
    demote_headings,
    end_marker,
    record,
    recording_stdout,
    replace_section,
    start_marker,
)

FACTS = RunFacts(date="2026-12-01", commit="abc1234", machine="2 cores, Test CPU, no GPU; load average 0.50 at start")

BEFORE = "# Results\r\n\nHand-written table | x |\n\n  trailing spaces  \nünïcode ✓\n\n"
BETWEEN = "\n## Another part\n\nkept as is\t\n"
AFTER = "\nthe end, without a final newline"


def document_with_two_sections() -> str:
    return (
        BEFORE
        + f"{start_marker('bench_a')}\nold figures of a\n{end_marker('bench_a')}"
        + BETWEEN
        + f"{start_marker('bench_b')}\nold figures of b\nsecond line\n{end_marker('bench_b')}"
        + AFTER
    )


def test_replacing_a_section_changes_only_the_text_between_its_markers() -> None:
    document = document_with_two_sections()

    updated = replace_section(document, "bench_b", "new figures of b\n")

    expected = (
        BEFORE
        + f"{start_marker('bench_a')}\nold figures of a\n{end_marker('bench_a')}"
        + BETWEEN
        + f"{start_marker('bench_b')}\nnew figures of b\n{end_marker('bench_b')}"
        + AFTER
    )
    assert updated == expected
    assert updated.startswith(document.split(start_marker("bench_b"))[0])
    assert updated.endswith(f"{end_marker('bench_b')}{AFTER}")


def test_replacing_is_idempotent_and_adds_a_final_newline_to_the_content() -> None:
    once = replace_section(document_with_two_sections(), "bench_a", "figures")
    twice = replace_section(once, "bench_a", "figures")

    assert once == twice
    assert f"{start_marker('bench_a')}\nfigures\n{end_marker('bench_a')}" in once


def test_a_missing_section_is_appended_and_the_rest_kept() -> None:
    document = document_with_two_sections()

    updated = replace_section(document, "evaluate_body", "table\n")

    assert updated == document + f"\n\n{start_marker('evaluate_body')}\ntable\n{end_marker('evaluate_body')}\n"
    assert replace_section("", "x", "y") == f"{start_marker('x')}\ny\n{end_marker('x')}\n"
    assert replace_section("text\n", "x", "y").startswith("text\n\n<!--")


@pytest.mark.parametrize(
    "document",
    [
        f"{start_marker('a')}\nonly the start\n",
        f"only the end\n{end_marker('a')}\n",
        f"{end_marker('a')}\n{start_marker('a')}\n",
        f"{start_marker('a')}\n{end_marker('a')}\n{start_marker('a')}\n{end_marker('a')}\n",
    ],
)
def test_broken_markers_are_refused_rather_than_guessed(document: str) -> None:
    with pytest.raises(ValueError, match="section 'a'"):
        replace_section(document, "a", "new")


def test_a_name_or_content_that_would_break_the_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="section names"):
        replace_section("", "Bench Faiss", "x")
    with pytest.raises(ValueError, match="must not hold its markers"):
        replace_section("", "a", f"x {end_marker('a')}")


def test_report_headings_are_demoted_below_the_document_headings_but_code_is_not() -> None:
    report = "# Garment quality\n\ntext\n\n## Table\n\n```text\n# not a heading\n```\n"

    assert demote_headings(report) == "#### Garment quality\n\ntext\n\n##### Table\n\n```text\n# not a heading\n```\n"
    assert demote_headings("#### deep\n###### deeper") == "#### deep\n###### deeper"
    assert demote_headings("no headings") == "no headings"


def git(folder: Path, *arguments: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *arguments], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git repository with one commit holding docs/results.md and a source file."""
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "test@example.invalid")
    git(tmp_path, "config", "user.name", "test")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "results.md").write_text("# Results\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git(tmp_path, "add", "docs/results.md", "code.py")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_the_commit_says_when_the_tree_differs_from_it_except_for_the_results_themselves(checkout: Path) -> None:
    head = git(checkout, "rev-parse", "--short", "HEAD").strip()
    results_path = checkout / "docs" / "results.md"
    pictures = checkout / "docs" / "pictures"

    assert commit_description(checkout) == head

    results_path.write_text("# Results\n\nnew figures\n")
    (pictures / "bench").mkdir(parents=True)
    (pictures / "bench" / "grid.png").write_bytes(b"png")
    assert commit_description(checkout, exclude=(results_path, pictures)) == head
    # Asked from a folder below the root, as run_facts asks from the package's own folder.
    (checkout / "shared").mkdir()
    assert commit_description(checkout / "shared", exclude=(results_path, pictures)) == head
    assert commit_description(checkout) == f"{head} + uncommitted changes"

    (checkout / "code.py").write_text("x = 2\n")
    assert commit_description(checkout, exclude=(results_path, pictures)) == f"{head} + uncommitted changes"


def test_outside_a_checkout_the_commit_is_unknown(tmp_path: Path) -> None:
    assert commit_description(tmp_path) == "unknown (not a git checkout)"


def test_the_cpu_model_is_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: Test\nmodel name\t: Test CPU @ 2.00GHz\n\nprocessor\t: 1\n")

    assert cpu_model(cpuinfo) == "Test CPU @ 2.00GHz"


def test_the_command_names_the_module_or_the_script_with_its_arguments() -> None:
    assert command_line(["--seeds", "5", "--out", "var/a b"], module="tryon.services.recommendation.evaluate") == (
        "python -m tryon.services.recommendation.evaluate --seeds 5 --out 'var/a b'"
    )
    assert command_line(["--sizes", "100000"]).endswith(" --sizes 100000")


def test_recording_writes_what_was_printed_with_date_commit_machine_and_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "run_facts", lambda path: FACTS)
    results_path = tmp_path / "results.md"
    results_path.write_text(f"# Results\n\n{start_marker('bench_x')}\nold\n{end_marker('bench_x')}\n\nafter\n")

    with recording_stdout(results_path, "bench_x", "Bench X", command="python tests/benchmarks/bench_x.py"):
        print("| row | 1.00 |")

    assert capsys.readouterr().out == "| row | 1.00 |\n"
    text = results_path.read_text()
    assert text.startswith(f"# Results\n\n{start_marker('bench_x')}\n**Bench X**")
    assert text.endswith(f"{end_marker('bench_x')}\n\nafter\n")
    for stated in ("- date: 2026-12-01", "- commit: abc1234", f"- machine: {FACTS.machine}",
                   "- command: `python tests/benchmarks/bench_x.py`", "```text\n| row | 1.00 |\n```"):
        assert stated in text
    assert "old" not in text


def test_a_run_that_fails_leaves_the_last_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "run_facts", lambda path: FACTS)
    results_path = tmp_path / "results.md"
    results_path.write_text(f"{start_marker('bench_x')}\nlast good figures\n{end_marker('bench_x')}\n")
    before = results_path.read_bytes()

    with pytest.raises(RuntimeError), recording_stdout(results_path, "bench_x", "Bench X", command="c"):
        print("half a table")
        raise RuntimeError("service died")

    assert results_path.read_bytes() == before


def test_without_a_results_file_nothing_is_written(tmp_path: Path) -> None:
    with recording_stdout(None, "bench_x", "Bench X"):
        print("figures")
    record(None, "evaluate_x", "X", "table")

    assert list(tmp_path.iterdir()) == []


def test_small_pictures_are_copied_beside_the_document_and_large_ones_only_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "MAX_PICTURE_BYTES", 100)
    out = tmp_path / "var" / "eval"
    out.mkdir(parents=True)
    (out / "grid.png").write_bytes(b"\x89PNG small")
    (out / "curves.png").write_bytes(b"\x89PNG" + b"x" * 200)
    results_path = tmp_path / "docs" / "results.md"

    record(results_path, "evaluate_x", "X", "# Report\n\n| a |\n|---|\n| 1 |\n", command="python -m x",
           pictures=[out / "grid.png", out / "curves.png", out / "missing.png"], facts=FACTS)

    text = results_path.read_text()
    assert (tmp_path / "docs" / "pictures" / "evaluate_x" / "grid.png").read_bytes() == b"\x89PNG small"
    assert "![grid](pictures/evaluate_x/grid.png)" in text
    assert f"`{(out / 'curves.png').as_posix()}` (0 KiB, not copied)" in text
    assert not (tmp_path / "docs" / "pictures" / "evaluate_x" / "curves.png").exists()
    assert "missing" not in text
    assert "#### Report" in text


def test_a_benchmark_script_rewrites_its_own_section_and_keeps_the_others(tmp_path: Path) -> None:
    repository = Path(__file__).resolve().parents[2]
    results_path = tmp_path / "results.md"
    hand_written = "# Results\n\nA table copied from a note | 1 |\n\n"
    results_path.write_text(
        hand_written
        + f"{start_marker('bench_garment_generation')}\nlast run\n{end_marker('bench_garment_generation')}\n"
        + f"\n{start_marker('bench_faiss')}\nuntouched\n{end_marker('bench_faiss')}\n"
    )

    finished = subprocess.run(
        [sys.executable, "tests/benchmarks/bench_garment_generation.py", "--seconds", "0.01", "--max-calls", "2",
         "--threads", "1", "--results", str(results_path)],
        cwd=repository, capture_output=True, text=True, timeout=240,
    )

    assert finished.returncode == 0, finished.stderr
    text = results_path.read_text()
    assert text.startswith(hand_written + start_marker("bench_garment_generation"))
    assert "last run" not in text
    assert "| vae | 64 |" in text and "| gan | 1 |" in text
    assert "- command: `python tests/benchmarks/bench_garment_generation.py --seconds 0.01 --max-calls 2" in text
    assert text.endswith(f"\n{start_marker('bench_faiss')}\nuntouched\n{end_marker('bench_faiss')}\n")


def test_every_evaluation_and_benchmark_script_has_its_section_in_docs_results() -> None:
    repository = Path(__file__).resolve().parents[2]
    document = (repository / "docs" / "results.md").read_text()
    writers = {
        path: f'"{path.stem}"' for path in sorted((repository / "tests" / "benchmarks").glob("bench_*.py"))
    }
    writers |= {
        repository / "services" / "body" / "evaluate.py": '"evaluate_body"',
        repository / "services" / "garment" / "quality.py": '"evaluate_garment"',
        repository / "services" / "recommendation" / "evaluate.py": '"evaluate_recommendation"',
        repository / "services" / "body" / "mesh_evaluate.py": '"body_mesh"',
        repository / "services" / "garment" / "tryon_pictures.py": '"tryon_pictures"',
        repository / "services" / "recommendation" / "compatibility.py": '"outfit_compatibility"',
        repository / "services" / "recommendation" / "fit_evaluation.py": '"fit_ranking"',
    }

    for path, quoted_name in writers.items():
        source = path.read_text()
        assert "--results" in source or "add_results_option(parser)" in source, path.name
        assert quoted_name in source, f"{path.name} does not write section {quoted_name}"
        name = quoted_name.strip('"')
        assert document.count(start_marker(name)) == 1 and document.count(end_marker(name)) == 1, name
    assert len(re.findall(r"<!-- results:[a-z0-9_]+ -->", document)) == len(writers)


def test_the_facts_name_today_this_checkout_s_commit_and_the_machine(tmp_path: Path) -> None:
    repository = Path(__file__).resolve().parents[2]
    head = git(repository, "rev-parse", "--short", "HEAD").strip()

    facts = results.run_facts(tmp_path / "elsewhere" / "results.md")

    assert facts.date == datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    assert facts.commit in (head, f"{head} + uncommitted changes")
    assert re.fullmatch(r"\d+ cores, .+, (no GPU|.+); load average \d+\.\d\d at start", facts.machine)
