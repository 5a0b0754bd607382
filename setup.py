"""ament_python / pip build script for eggnet_ros.

The same file serves `colcon build` on a ROS 2 install (data_files land in share/eggnet_ros) and
`pip install -e .` in the development venv (console scripts on PATH).
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "eggnet_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "bench"]),
    # Built-in CC0 photos of the synthetic training/test data travel with the package.
    package_data={"eggnet_ros.data": ["images/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml", "README.md"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/models", glob("models/*.safetensors") + glob("models/*.json")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="eggnet_ros maintainers",
    maintainer_email="eggnet-ros@example.com",
    description="Gyroscope-guided single-image deblurring (EggNet) as a ROS 2 node.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "eggnet_deblur_node = eggnet_ros.ros.entry:main",
            "eggnet-deblur = eggnet_ros.cli.deblur:main",
            "eggnet-train = eggnet_ros.training.train:main",
            "eggnet-eval = eggnet_ros.training.evaluate:main",
            "eggnet-bag = eggnet_ros.bag.cli:main",
            "eggnet-capture = eggnet_ros.capture.cli:main",
        ],
    },
)
