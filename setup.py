"""Package list: the packages under src/ plus conf/ and its folders, as ``unetlab.conf``.

Everything else about the package is in pyproject.toml; its ``[tool.setuptools] package-dir``
maps ``unetlab.conf`` to conf/, and a pyproject.toml ``find`` cannot add a package from
outside src/ to what it finds there.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(
            "src", include=["unetlab*", "hydra_plugins*"], exclude=["*.__pycache__"]
        ),
        "unetlab.conf",
        *(
            f"unetlab.conf.{name}"
            for name in find_namespace_packages("conf", exclude=["*__pycache__"])
        ),
    ]
)
