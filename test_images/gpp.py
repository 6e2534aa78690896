"""Group Policy Preferences ``cpassword`` encryption, as the Group Policy Management Console does it.

AES-256-CBC with the key Microsoft published in MS-GPPREF 2.2.1.1.4, a zero IV, the password
as UTF-16LE with PKCS#7 padding, base64 without the trailing ``=`` padding.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

GPP_AES_KEY = bytes.fromhex("4e9906e8fcb66cc9faf49310620ffee8f496e806cc057990209b09a433b66c1b")


def encrypt_cpassword(password: str) -> str:
    padder = padding.PKCS7(128).padder()
    plain = padder.update(password.encode("utf-16-le")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(GPP_AES_KEY), modes.CBC(b"\0" * 16)).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii").rstrip("=")


def decrypt_cpassword(cpassword: str) -> str:
    """Inverse of :func:`encrypt_cpassword` (what Get-GPPPassword does); used to check the planted value."""
    data = base64.b64decode(cpassword + "=" * (-len(cpassword) % 4))
    decryptor = Cipher(algorithms.AES(GPP_AES_KEY), modes.CBC(b"\0" * 16)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    plain = unpadder.update(decryptor.update(data) + decryptor.finalize()) + unpadder.finalize()
    return plain.decode("utf-16-le")
