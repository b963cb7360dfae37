"""unetlab: U-Net experiments for biomedical image segmentation."""

__version__ = "0.1.0"
