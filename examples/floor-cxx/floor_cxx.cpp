// A C++ extension that needs libstdc++ at run time (std::string, std::ostringstream).
#include <Python.h>

#include <sstream>
#include <string>

static PyObject *greet(PyObject *, PyObject *args) {
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name)) return nullptr;
    std::ostringstream out;
    out << "hello " << std::string(name) << " from C++";
    return PyUnicode_FromString(out.str().c_str());
}

static PyMethodDef methods[] = {
    {"greet", greet, METH_VARARGS, "Greets in C++."},
    {nullptr, nullptr, 0, nullptr},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "floor_cxx", nullptr, -1, methods};

PyMODINIT_FUNC PyInit_floor_cxx(void) { return PyModule_Create(&module); }
