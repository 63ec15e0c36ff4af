/* A C extension calling the Fortran library of the fnorm pack. */
#include <Python.h>

double fnorm(const double *x, int n);

static PyObject *norm(PyObject *self, PyObject *args) {
    double a, b;
    if (!PyArg_ParseTuple(args, "dd", &a, &b)) return NULL;
    double x[2] = {a, b};
    return PyFloat_FromDouble(fnorm(x, 2));
}

static PyMethodDef methods[] = {
    {"norm", norm, METH_VARARGS, "The norm of (a, b), computed in Fortran."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "floor_fortran", NULL, -1, methods};

PyMODINIT_FUNC PyInit_floor_fortran(void) { return PyModule_Create(&module); }
