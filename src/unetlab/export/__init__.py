"""Exporting trained networks: ONNX and TorchScript files with their parity check
(:mod:`.formats`), BioImage Model Zoo packages (:mod:`.bioimageio`) and the
``unetlab-export`` command (:mod:`.command`)."""
