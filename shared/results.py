"""Write the figures of an evaluation or benchmark run into its own section of ``docs/results.md``.

A section is the text between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``. Writing one
replaces only that text (or appends the section when the document lacks it) and keeps every other
byte of the document, so ``make evaluate`` and ``make bench`` each rewrite their own part and the
figures recorded by hand around them stay. Every section states the date, the commit (with
"+ uncommitted changes" when the working tree differs from it), the machine and the command.

A script offers ``--results FILE`` (``add_results_option``) and either records a markdown report it
built (``record``) or everything it printed (``recording_stdout``):

    with recording_stdout(arguments.results, "bench_faiss", "FAISS indexes against exact search"):
        main_body()
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

PICTURES_FOLDER = "pictures"
"""Pictures a section shows are copied into this folder beside the results document."""
MAX_PICTURE_BYTES = 512 * 1024
"""A larger picture is named with its path under var/ instead of being copied into docs/."""
_NAME = re.compile(r"[a-z0-9_]+")


def start_marker(name: str) -> str:
    """The line that opens section ``name``."""
    return f"<!-- results:{name} -->"


def end_marker(name: str) -> str:
    """The line that closes section ``name``."""
    return f"<!-- /results:{name} -->"


def replace_section(document: str, name: str, content: str) -> str:
    """``document`` with the text between the markers of section ``name`` replaced by ``content``.

    A document without that section gets it appended at its end, after a blank line. Everything
    outside the markers is kept byte for byte. Raises ValueError for a malformed name, content that
    itself holds the section's markers, or a document whose markers are missing one half, repeated
    or out of order.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"section names are lower-case letters, digits and underscores, got {name!r}")
    start, end = start_marker(name), end_marker(name)
    if start in content or end in content:
        raise ValueError(f"the content of section {name!r} must not hold its markers")
    body = content if content.endswith("\n") else content + "\n"
    starts, ends = document.count(start), document.count(end)
    if starts == 0 and ends == 0:
        separator = "" if not document else "\n" if document.endswith("\n") else "\n\n"
        return f"{document}{separator}{start}\n{body}{end}\n"
    if starts != 1 or ends != 1:
        raise ValueError(f"section {name!r} must have exactly one {start} and one {end}")
    opened, closed = document.index(start), document.index(end)
    if closed < opened:
        raise ValueError(f"section {name!r} closes before it opens")
    # The start marker keeps its own line; whatever stood between the markers is replaced.
    return document[: opened + len(start)] + "\n" + body + document[closed:]


def write_section(path: Path, name: str, content: str) -> None:
    """Replace (or add) section ``name`` of the markdown file at ``path`` with ``content``."""
    document = path.read_text(encoding="utf-8") if path.exists() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(document, name, content), encoding="utf-8")


@dataclass(frozen=True)
class RunFacts:
    """Where and when figures were measured, as a results section states it."""

    date: str
    commit: str
    machine: str


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name from ``cpuinfo`` (Linux), else what the platform reports."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Processor", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "CPU model unknown"


def gpu_names() -> list[str]:
    """Names of the NVIDIA GPUs nvidia-smi lists; empty without one (or without nvidia-smi)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listed.splitlines() if line.strip()]


def machine_description() -> str:
    """Cores this process may use, the CPU model, the GPUs, and the load average when asked."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = gpu_names()
    gpu_text = ", ".join(gpus) if gpus else "no GPU"
    # The load average says whether other work shared the cores while the figures were measured.
    return f"{cores} cores, {cpu_model()}, {gpu_text}; load average {os.getloadavg()[0]:.2f} at start"


def commit_description(folder: Path, exclude: Sequence[Path] = ()) -> str:
    """The short HEAD commit of the git checkout holding ``folder``, "+ uncommitted changes" if dirty.

    Paths in ``exclude`` do not count as changes: the results document and its pictures, which
    the previous script of the same ``make`` run has just rewritten.
    """
    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *arguments], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()

    try:
        root = Path(git("rev-parse", "--show-toplevel"))
        commit = git("rev-parse", "--short", "HEAD")
        excluded = []
        for path in exclude:
            with contextlib.suppress(ValueError):
                # "top": relative to the checkout's root, not to ``folder``, where git runs.
                excluded.append(f":(top,exclude){Path(path).resolve().relative_to(root).as_posix()}")
        changes = git("status", "--porcelain", "--", str(root), *excluded)
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{commit} + uncommitted changes" if changes else commit


def run_facts(results_path: Path) -> RunFacts:
    """Today's date (UTC), the commit of the code that runs (this checkout of tryon) and the machine.

    The results document and its pictures do not count as uncommitted changes.
    """
    pictures = results_path.parent / PICTURES_FOLDER
    return RunFacts(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        commit=commit_description(Path(__file__).resolve().parent, exclude=(results_path, pictures)),
        machine=machine_description(),
    )


def command_line(argv: Sequence[str] | None = None, module: str | None = None) -> str:
    """The shell command that reruns this process: ``python -m MODULE ARGS`` or ``python SCRIPT ARGS``.

    A script is named by its path relative to the working directory when it lies below it.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if module is not None:
        return shlex.join(["python", "-m", module, *arguments])
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(Path.cwd())
    return shlex.join(["python", script.as_posix(), *arguments])


def demote_headings(markdown: str, top_level: int = 4) -> str:
    """``markdown`` with its headings shifted so the highest is ``top_level``; fenced code untouched.

    A report written to stand alone may start at "#"; inside results.md it sits below the
    document's own headings.
    """
    lines = markdown.split("\n")
    fenced, levels = False, []
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"(#{1,6}) ", line)):
            levels.append(len(match.group(1)))
    if not levels:
        return markdown
    shift = max(0, top_level - min(levels))
    fenced, out = False, []
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"(#{1,6}) ", line)):
            line = "#" * min(6, len(match.group(1)) + shift) + line[len(match.group(1)):]
        out.append(line)
    return "\n".join(out)


def format_section(
    title: str, command: str, facts: RunFacts, body: str, fenced: bool, pictures: Sequence[str] = ()
) -> str:
    """The markdown of one section: title, date, commit, machine, command, the figures and pictures."""
    lines = [
        f"**{title}** (written by the command below)",
        "",
        f"- date: {facts.date}",
        f"- commit: {facts.commit}",
        f"- machine: {facts.machine}",
        f"- command: `{command}`",
        "",
    ]
    text = body.strip("\n")
    lines += ["```text", text, "```"] if fenced else [demote_headings(text)]
    if pictures:
        lines += ["", *pictures]
    return "\n".join(lines) + "\n"


def _picture_lines(results_path: Path, name: str, pictures: Sequence[Path]) -> list[str]:
    """Copy small pictures next to the results document; return the markdown that shows or names each."""
    lines = []
    folder = results_path.parent / PICTURES_FOLDER / name
    for picture in pictures:
        if not picture.is_file():
            continue
        if picture.stat().st_size > MAX_PICTURE_BYTES:
            lines.append(f"- `{picture.as_posix()}` ({picture.stat().st_size // 1024} KiB, not copied)")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(picture, folder / picture.name)
        lines.append(f"![{picture.stem}]({PICTURES_FOLDER}/{name}/{picture.name})")
    return lines


def record(
    results_path: Path | None,
    name: str,
    title: str,
    body: str,
    *,
    command: str | None = None,
    fenced: bool = False,
    pictures: Sequence[Path] = (),
    facts: RunFacts | None = None,
) -> None:
    """Write ``body`` as section ``name`` of ``results_path``; nothing when ``results_path`` is None.

    ``body`` is markdown unless ``fenced`` (then it is shown verbatim). Pictures up to
    MAX_PICTURE_BYTES are copied to ``pictures/<name>/`` beside the document and shown.
    """
    if results_path is None:
        return
    facts = facts or run_facts(results_path)
    lines = _picture_lines(results_path, name, pictures)
    section = format_section(title, command or command_line(), facts, body, fenced, lines)
    write_section(results_path, name, section)


class _Tee(io.TextIOBase):
    """A text stream that writes to another one and keeps a copy."""

    def __init__(self, stream) -> None:
        super().__init__()
        self._stream = stream
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()


@contextlib.contextmanager
def recording_stdout(
    results_path: Path | None, name: str, title: str, command: str | None = None
) -> Iterator[None]:
    """Print as usual, and on success write what was printed, verbatim, as section ``name``.

    The facts are taken when the block starts, so the load average is the one the run met.
    A block that raises writes nothing: a partial run must not replace the last complete figures.
    """
    if results_path is None:
        yield
        return
    facts = run_facts(results_path)
    command = command or command_line()
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield
    record(results_path, name, title, tee.copy.getvalue(), command=command, fenced=True, facts=facts)


def add_results_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--results FILE``: the markdown document whose section this run rewrites."""
    parser.add_argument(
        "--results", type=Path, metavar="FILE",
        help="also write the figures into this script's section of FILE (make uses docs/results.md)",
    )
