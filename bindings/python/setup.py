"""The wheel's platform tag. The package has no Python extension, but it carries the native
library, which runs on one platform only: the wheel is tagged py3-none-<platform> (any Python 3,
this platform), not py3-none-any, and installs into platlib. Everything else is in
pyproject.toml."""

from pathlib import Path

from setuptools import Distribution, setup

try:
    from setuptools.command.bdist_wheel import bdist_wheel  # setuptools >= 70.1
except ImportError:
    from wheel.bdist_wheel import bdist_wheel

PACKAGE = Path(__file__).resolve().parent / "nativesoftmax"


class BinaryDistribution(Distribution):
    """Platform-specific: it carries libnativesoftmax*.so."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        return ("py3", "none", super().get_tag()[2])

    def run(self):
        libraries = sorted(p.name for p in PACKAGE.glob("libnativesoftmax*.so"))
        if "libnativesoftmax.so" not in libraries or len(libraries) < 2:
            raise SystemExit("nativesoftmax/ holds %s: a wheel needs the dispatcher "
                             "libnativesoftmax.so and its variants beside it; build it with "
                             "./build.sh, which copies them there" % (libraries or "no library"))
        super().run()


setup(distclass=BinaryDistribution, cmdclass={"bdist_wheel": PlatformWheel})
