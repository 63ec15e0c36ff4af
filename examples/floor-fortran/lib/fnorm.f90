! The Euclidean norm of a vector, callable from C, rounded through Fortran's formatted I/O:
! a Fortran library that needs libgfortran at run time.
function fnorm(x, n) result(r) bind(C, name="fnorm")
    use iso_c_binding, only: c_double, c_int
    integer(c_int), value :: n
    real(c_double), intent(in) :: x(n)
    real(c_double) :: r
    character(len=32) :: text
    write (text, '(F24.12)') norm2(x)
    read (text, *) r
end function fnorm
