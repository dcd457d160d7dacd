"""What a file written by ``torch.save`` holds, found without executing any of it.

``torch.save`` writes a zip archive: ``NAME/data.pkl`` (a pickle of the saved object, in which
every tensor is a reference to a storage record), ``NAME/data/N`` (the raw bytes of storage N)
and a few small records (``byteorder``, ``version``). A pickle can name any importable callable
(``os.system``, say) and call it while it is read; this module reads the pickle's *opcodes* with
:func:`pickletools.genops`, which decodes them and never runs them, so that a caller can see
every callable the pickle names before anything unpickles it.

Nothing here imports a name found in a file, calls anything a file names, or unpickles.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: the first bytes of a zip archive (``torch.save``'s format since torch 1.6)
ZIP_MAGIC = b"PK\x03\x04"

#: opcodes that push a string (a STACK_GLOBAL takes its module and name from two of them)
_STRING_OPCODES = frozenset(
    {
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
    }
)
_PUT_OPCODES = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPCODES = frozenset({"GET", "BINGET", "LONG_BINGET"})
#: opcodes that fetch a callable from copyreg's extension registry instead of by name
_EXTENSION_OPCODES = frozenset({"EXT1", "EXT2", "EXT4"})

#: what :func:`pickle_globals` reports for a callable whose name it cannot read statically
UNRESOLVED = "<a callable named indirectly>"


class TorchFileError(ValueError):
    """The file is not a readable ``torch.save`` zip archive; the message says what it is."""


@dataclass(frozen=True)
class TorchArchive:
    """The parts of a ``torch.save`` zip archive that matter before loading it.

    Attributes:
        path: the file.
        content: the whole file as read once: the caller hands these very bytes to
            ``torch.load``, so what was inspected is what is loaded, even if the file changes.
        pickle: the bytes of its ``data.pkl`` record.
        globals: ``module.name`` of every callable that the pickle names (see
            :func:`pickle_globals`).
    """

    path: Path
    content: bytes
    pickle: bytes
    globals: frozenset[str]


def describe_non_archive(head: bytes, size: int) -> str:
    """What a file whose first bytes are ``head`` is, when it is not a zip archive (for errors)."""
    if size == 0:
        return "is empty (0 bytes)"
    if head[:1] == b"\x80":  # a pickle's PROTO opcode: also how legacy torch files begin
        return (
            "is a pickle or a legacy (pre-zip) torch file, a format that fwp never reads because "
            "reading it can run code"
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return f"is not a checkpoint (its {size} bytes are not a torch zip archive)"
    return "is a text file, not a checkpoint"


def read_archive(path: str | Path) -> TorchArchive:
    """Open ``path`` as a ``torch.save`` zip archive and list the callables its pickle names.

    Raises:
        TorchFileError: the file is empty, a text file, random bytes, a pickle or legacy torch
            file, a truncated or damaged archive, or a zip archive that torch did not write.
    """
    path = Path(path)
    content = path.read_bytes()
    if not content.startswith(ZIP_MAGIC):
        raise TorchFileError(describe_non_archive(content[:64], len(content)))
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = [info.filename for info in archive.infolist()]
            if len(names) != len(set(names)):
                # two records of one name: readers may disagree about which one counts
                raise TorchFileError("is damaged: its zip archive holds two records of one name")
            records = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
            if len(records) != 1:
                raise TorchFileError(
                    "is a zip archive but not a torch file (it has no single NAME/data.pkl record)"
                )
            data = archive.read(records[0])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        raise TorchFileError(f"is truncated or damaged ({err})") from None
    try:
        found = pickle_globals(data)
    except ValueError as err:
        raise TorchFileError(f"is damaged: its pickle record cannot be decoded ({err})") from None
    return TorchArchive(path=path, content=content, pickle=data, globals=found)


def pickle_globals(data: bytes) -> frozenset[str]:
    """``module.name`` of every callable that the pickle ``data`` names, read from its opcodes
    with :func:`pickletools.genops` (decoded, never executed).

    GLOBAL and INST name theirs directly; STACK_GLOBAL takes module and name from the two strings
    on top of the stack, which are followed through the memo. A STACK_GLOBAL whose operands are
    not plain strings, and the extension-registry opcodes, are reported as :data:`UNRESOLVED`, so
    a caller that allows only known names refuses them.

    Raises:
        ValueError: ``data`` is not a well-formed pickle.
    """
    found: set[str] = set()
    recent: list[object] = []  # values pushed by recent opcodes (strings, or None for others)
    memo: dict[int, object] = {}
    for opcode, arg, _ in pickletools.genops(data):
        name = opcode.name
        if name in ("GLOBAL", "INST"):
            module, _, qualname = str(arg).partition(" ")
            found.add(f"{module}.{qualname}")
            recent.append(None)
        elif name == "STACK_GLOBAL":
            module, qualname = (recent[-2], recent[-1]) if len(recent) >= 2 else (None, None)
            if isinstance(module, str) and isinstance(qualname, str):
                found.add(f"{module}.{qualname}")
            else:
                found.add(UNRESOLVED)
            recent.append(None)
        elif name in _EXTENSION_OPCODES:
            found.add(UNRESOLVED)
            recent.append(None)
        elif name in _STRING_OPCODES:
            recent.append(arg if isinstance(arg, str) else None)
        elif name in _PUT_OPCODES:
            memo[int(arg)] = recent[-1] if recent else None
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
        elif name in _GET_OPCODES:
            recent.append(memo.get(int(arg)))
        else:
            recent.append(None)
        if len(recent) > 64:
            del recent[:-2]
    return frozenset(found)
