"""TorchScript archives are code: load one only when the user says they trust it.

PyTorch's security policy treats a TorchScript archive like a program (``torch.jit.load`` runs the
serialized code), so the ``torch`` and ``denoiser`` loaders refuse one unless ``trust_code=True``
(CLI ``--trust-code``).  An archive is recognised without loading it: a zip whose members include
TorchScript's ``code/`` directory or ``constants.pkl``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from samplekit.errors import UntrustedCodeError


def is_torchscript_archive(path: str | Path) -> bool:
    """True if ``path`` is a zip file laid out as a TorchScript archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any("/code/" in n or n.endswith("/constants.pkl") or n == "constants.pkl" for n in names)


def require_trust(path: str | Path, trust_code: bool) -> None:
    """Refuse a TorchScript archive unless ``trust_code``; other files pass (their readers check them)."""
    if not trust_code and is_torchscript_archive(path):
        raise UntrustedCodeError(
            f"{str(path)!r} is a TorchScript archive: loading it runs the code inside (PyTorch's security policy "
            "treats it like a program). Load it only if you trust where it came from: trust_code=True "
            "(CLI --trust-code); or pass the module object and a safetensors/state-dict weights file instead"
        )
