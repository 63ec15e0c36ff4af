import os

from setuptools import Extension, setup

# The fnorm pack, wherever refine mounted it (REFINE_PACKS: the packs' roots).
packs = os.environ.get("REFINE_PACKS", "").split()
setup(
    ext_modules=[
        Extension(
            "floor_fortran",
            ["floor_fortran.c"],
            libraries=["fnorm"],
            library_dirs=[os.path.join(p, "lib") for p in packs],
        )
    ]
)
