from setuptools import Extension, setup

# language="c++": linked by the C++ driver, so libstdc++ is a needed library the repair grafts.
setup(ext_modules=[Extension("floor_cxx", ["floor_cxx.cpp"], language="c++")])
