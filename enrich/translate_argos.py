"""The ``argos`` translation backend: Argos Translate packages run with CTranslate2.

Packages (``.argosmodel``: a zip holding one folder with ``metadata.json``, a CTranslate2 model in
``model/`` and ``sentencepiece.model`` or ``bpe.model``) are installed and read with argostranslate's
own package code, into newsradar's state directory rather than the user's home, so an Airflow worker
and the CLI see the same models.

Translation itself calls CTranslate2 directly with the package's tokenizer instead of
``argostranslate.translate``, for two reasons measured on this machine:

* argostranslate translates one string per call; a batch of titles goes through CTranslate2 as *one*
  ``translate_batch`` call here, which is what makes a backfill fast;
* argostranslate splits sentences with MiniSBD or Stanza models that it downloads at run time unless
  the package bundles them; that fails offline. Titles are one sentence and leads a few, so a
  punctuation rule splits them well enough, deterministically and without downloads.
"""

from __future__ import annotations

import json
import re
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enrich.translator import TranslationError

_PAIR = re.compile(r"^(?:translate[-_])?([a-z]{2,3})\s*(?:[-_→>]|->|to)\s*([a-z]{2,3})$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'„“‚«(\[A-ZÄÖÜ0-9])|(?<=[。！？])")
_NO_SPACE_TARGETS = ("zh", "zt", "ja")
_MAX_DECODE = 512
_lock = threading.Lock()


class ArgosPackageError(Exception):
    """A package file that is not a usable Argos translation package, or an index that cannot be read."""


@dataclass(frozen=True)
class PackageInfo:
    """An installed package, as ``newsradar models list`` shows it."""

    name: str
    from_code: str
    to_code: str
    version: str
    path: Path


def parse_pair(name: str) -> tuple[str, str]:
    """``de-en``, ``de_en``, ``translate-de_en``, ``de→en`` → ("de", "en")."""
    match = _PAIR.match(name.strip())
    if not match:
        raise ArgosPackageError(f"{name!r} is not a language pair; write it like de-en or translate-de_en")
    return match.group(1).lower(), match.group(2).lower()


def _configure(packages_dir: Path) -> Any:
    """Point argostranslate at ``packages_dir``: its installer and package listing read these module
    attributes at call time (ARGOS_PACKAGES_DIR would only be read once, at import)."""
    packages_dir.mkdir(parents=True, exist_ok=True)
    with _lock:
        from argostranslate import settings as argos_settings

        argos_settings.package_data_dir = packages_dir
        argos_settings.package_dirs = [packages_dir]
    from argostranslate import package as argos_package

    return argos_package


def installed_packages(packages_dir: Path) -> list[Any]:
    """argostranslate ``Package`` objects of the translation packages in ``packages_dir``."""
    argos_package = _configure(packages_dir)
    packages = argos_package.get_installed_packages([packages_dir])
    return [pkg for pkg in packages if getattr(pkg, "type", "translate") == "translate"]


def describe(packages_dir: Path) -> list[PackageInfo]:
    return sorted(
        (
            PackageInfo(
                pkg.package_path.name, pkg.from_code, pkg.to_code, pkg.package_version, pkg.package_path
            )
            for pkg in installed_packages(packages_dir)
        ),
        key=lambda info: (info.from_code, info.to_code),
    )


def check_package_file(path: Path) -> dict[str, Any]:
    """The package's metadata, after checking the layout argostranslate expects; a clear error otherwise."""
    if not path.is_file():
        raise ArgosPackageError(f"{path} does not exist")
    if not zipfile.is_zipfile(path):
        raise ArgosPackageError(f"{path} is not an Argos package (an .argosmodel is a zip archive)")
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n and not n.startswith("__MACOSX")]
        tops = {n.split("/", 1)[0] for n in names}
        if len(tops) != 1 or not any("/" in n for n in names):
            raise ArgosPackageError(
                f"{path}: an .argosmodel holds exactly one folder (with metadata.json, model/ and "
                f"sentencepiece.model inside); found top-level entries {sorted(tops)[:5]}"
            )
        top = tops.pop()
        try:
            metadata = json.loads(archive.read(f"{top}/metadata.json"))
        except KeyError as error:
            raise ArgosPackageError(f"{path}: {top}/metadata.json is missing") from error
        except json.JSONDecodeError as error:
            raise ArgosPackageError(f"{path}: {top}/metadata.json is not valid JSON ({error})") from error
        if not isinstance(metadata, dict):
            raise ArgosPackageError(f"{path}: metadata.json must hold a JSON object")
        if metadata.get("type", "translate") != "translate":
            raise ArgosPackageError(
                f"{path}: package type {metadata.get('type')!r} is not a translation package"
            )
        for key in ("from_code", "to_code"):
            if not metadata.get(key):
                raise ArgosPackageError(f"{path}: metadata.json lacks {key!r}")
        if f"{top}/model/model.bin" not in names:
            raise ArgosPackageError(f"{path}: {top}/model/model.bin (the CTranslate2 model) is missing")
        if f"{top}/sentencepiece.model" not in names and f"{top}/bpe.model" not in names:
            raise ArgosPackageError(
                f"{path}: neither {top}/sentencepiece.model nor {top}/bpe.model is present"
            )
    metadata["_folder"] = top
    return metadata


def install_file(path: Path, packages_dir: Path) -> PackageInfo:
    """Install a local ``.argosmodel`` (the offline way) with argostranslate's installer."""
    metadata = check_package_file(path)
    argos_package = _configure(packages_dir)
    argos_package.install_from_path(path)
    installed = packages_dir / str(metadata["_folder"])
    pkg = argos_package.Package(installed)
    return PackageInfo(installed.name, pkg.from_code, pkg.to_code, pkg.package_version, installed)


def install_from_index(names: Sequence[str], packages_dir: Path) -> list[PackageInfo]:
    """Download and install packages from the Argos package index (online machines only; the index
    address can be overridden with ARGOS_PACKAGE_INDEX, e.g. for a mirror)."""
    wanted = [parse_pair(name) for name in names]
    argos_package = _configure(packages_dir)
    from argostranslate import settings as argos_settings

    argos_package.update_package_index()  # logs and returns on network errors
    if not Path(argos_settings.local_package_index).is_file():
        raise ArgosPackageError(
            "could not download the Argos package index (offline?); fetch the .argosmodel files on a "
            "machine with internet access and install them with: newsradar models install --file FILE"
        )
    available = argos_package.get_available_packages()
    out: list[PackageInfo] = []
    for source, target in wanted:
        match = [p for p in available if p.from_code == source and p.to_code == target]
        if not match:
            pairs = sorted({f"{p.from_code}-{p.to_code}" for p in available})
            raise ArgosPackageError(
                f"the Argos index has no {source}-{target} package; it has: {', '.join(pairs)}"
            )
        download = match[0].download()
        argos_package.install_from_path(download)
        out.extend(i for i in describe(packages_dir) if (i.from_code, i.to_code) == (source, target))
    return out


def split_sentences(text: str) -> list[str]:
    """Paragraphs, then sentences at . ! ? (before a capital) and at 。！？ — enough for titles and leads."""
    out: list[str] = []
    for paragraph in text.split("\n"):
        out.extend(s.strip() for s in _SENTENCE_END.split(paragraph) if s and s.strip())
    return out


class ArgosTranslator:
    """Batched CTranslate2 translation with the tokenizer and model of installed Argos packages."""

    name = "argos"

    def __init__(
        self, packages_dir: Path, threads: int = 2, beam_size: int = 2, batch_size: int = 32
    ) -> None:
        import ctranslate2  # noqa: F401  (fail at construction, not mid-batch, when it is missing)

        self.packages_dir = packages_dir
        self.threads = threads
        self.beam_size = beam_size
        self.batch_size = batch_size
        self._packages: dict[tuple[str, str], Any] | None = None
        self._models: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def _pairs(self) -> dict[tuple[str, str], Any]:
        if self._packages is None:
            self._packages = {(p.from_code, p.to_code): p for p in installed_packages(self.packages_dir)}
        return self._packages

    def model_id(self, source: str, target: str) -> str | None:
        pkg = self._pairs().get((source, target))
        if pkg is None:
            return None
        model_bin = pkg.package_path / "model" / "model.bin"
        size = model_bin.stat().st_size if model_bin.is_file() else 0
        return f"argos:{source}-{target}:{pkg.package_path.name}:{pkg.package_version}:{size}"

    def _model(self, source: str, target: str) -> tuple[Any, Any]:
        pkg = self._pairs().get((source, target))
        if pkg is None:
            raise TranslationError(f"no Argos package for {source}→{target} in {self.packages_dir}")
        with self._lock:
            model = self._models.get((source, target))
            if model is None:
                import ctranslate2

                try:
                    model = ctranslate2.Translator(
                        str(pkg.package_path / "model"),
                        device="cpu",
                        inter_threads=1,
                        intra_threads=self.threads,
                    )
                except (RuntimeError, ValueError, OSError) as error:
                    raise TranslationError(f"cannot load {pkg.package_path / 'model'}: {error}") from error
                self._models[(source, target)] = model
        return pkg, model

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        pkg, model = self._model(source, target)
        sentences: list[list[str]] = [split_sentences(text) for text in texts]
        flat = [s for group in sentences for s in group]
        if not flat:
            return ["" for _ in texts]
        try:
            tokens = [pkg.tokenizer.encode(s) for s in flat]
            prefix = [[pkg.target_prefix] for _ in tokens] if pkg.target_prefix else None
            longest = max(len(t) for t in tokens)
            results = model.translate_batch(
                tokens,
                target_prefix=prefix,
                max_batch_size=self.batch_size,
                beam_size=self.beam_size,
                replace_unknowns=True,
                max_input_length=1024,
                max_decoding_length=min(_MAX_DECODE, 2 * longest + 16),
            )
            decoded = [self._decode(pkg, result.hypotheses[0]) for result in results]
        except (RuntimeError, ValueError, OSError) as error:
            raise TranslationError(f"CTranslate2 failed: {error}") from error
        joiner = "" if target in _NO_SPACE_TARGETS else " "
        out: list[str] = []
        position = 0
        for group in sentences:
            out.append(joiner.join(decoded[position : position + len(group)]).strip())
            position += len(group)
        return out

    @staticmethod
    def _decode(pkg: Any, tokens: list[str]) -> str:
        value = str(pkg.tokenizer.decode(tokens))
        if pkg.target_prefix and value.startswith(pkg.target_prefix):
            value = value[len(pkg.target_prefix) :]
        return value.strip()
