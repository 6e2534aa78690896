"""Deterministic builders of small, real forensic test images (issue 2).

``python3 -m test_images.build --out DIR`` writes every form of the Windows 10 test machine
(directory tree, NTFS volume, GPT/MBR disks, E01, QCOW2, VMDK, VHD, VHDX, KAPE and Velociraptor
collections). :mod:`test_images.windows_tree` is the single source of truth for what is planted.
"""
