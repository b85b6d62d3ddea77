"""Offline training of GASA-UNet on nnU-Net v2: dataset conversion, planning, training, evaluation, export."""
