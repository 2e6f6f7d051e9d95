# Registers the test suite with ctest (included from CMakeLists.txt when MV_BUILD_TESTS is on).
#   tests/test_*.c        cmocka unit tests, one executable and one ctest entry each (label "unit")
#   tests/t_*.sh          run as `bash FILE`            (label "script"; exit 77 = skipped)
#   tests/t_*.py          run as `/usr/bin/python3 FILE` (label "script"; exit 77 = skipped)
#   tests/regress_runner.c  a helper program for the script tests, not a test of its own
# Every test gets the environment in MV_TEST_ENV below and a 600 s timeout.
include_guard(GLOBAL)

pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)

set(_mv_test_bin_dir "${CMAKE_BINARY_DIR}/tests")

# mv_test_program(<name> <source>): a program of the test suite; it may include private headers.
function(mv_test_program name source)
    add_executable(${name} "${source}")
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${_mv_test_bin_dir}")
    target_include_directories(${name} PRIVATE "${MV_PUBLIC_INCLUDE}" "${MV_PRIVATE_INCLUDE}")
    target_link_libraries(${name} PRIVATE medveil_static ${MV_LINK_DEPS})
endfunction()

set(_mv_regress_runner "")
if(EXISTS "${PROJECT_SOURCE_DIR}/tests/regress_runner.c")
    mv_test_program(regress_runner "${PROJECT_SOURCE_DIR}/tests/regress_runner.c")
    set(_mv_regress_runner "$<TARGET_FILE:regress_runner>")
endif()
# Re-run the configuration when tests/regress_runner.c appears or goes.
file(GLOB _mv_unused CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/tests/regress_runner.c")

set(_mv_medveil "")
if(TARGET medveil)
    set(_mv_medveil "$<TARGET_FILE:medveil>")
endif()
set(_mv_mksynth "")
if(TARGET mksynth)
    set(_mv_mksynth "$<TARGET_FILE:mksynth>")
endif()
if(MV_SANITIZE)
    set(_mv_sanitize 1)
else()
    set(_mv_sanitize 0)
endif()

set(MV_TEST_ENV
    "MEDVEIL=${_mv_medveil}"
    "MKSYNTH=${_mv_mksynth}"
    "REGRESS_RUNNER=${_mv_regress_runner}"
    "MV_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
    "MV_BUILD_DIR=${CMAKE_BINARY_DIR}"
    "MV_CORPUS=${MV_CORPUS}"
    "MV_PYTHON=/usr/bin/python3"
    "MV_SANITIZE=${_mv_sanitize}"
    "MEDVEIL_HOME=${CMAKE_BINARY_DIR}/test-home"
    "PYTHONDONTWRITEBYTECODE=1")

set(_mv_test_names "")
macro(_mv_claim_test_name name source)
    if(${name} IN_LIST _mv_test_names)
        message(FATAL_ERROR "two tests are named ${name}; rename ${source}")
    endif()
    list(APPEND _mv_test_names ${name})
endmacro()

foreach(_src IN LISTS MV_UNIT_TESTS)
    cmake_path(GET _src STEM _name)
    _mv_claim_test_name(${_name} "${_src}")
    mv_test_program(${_name} "${_src}")
    target_link_libraries(${_name} PRIVATE PkgConfig::CMOCKA)
    add_test(NAME ${_name} COMMAND ${_name})
    set_tests_properties(${_name} PROPERTIES LABELS unit)
endforeach()

foreach(_src IN LISTS MV_SCRIPT_TESTS)
    cmake_path(GET _src STEM _name)
    cmake_path(GET _src EXTENSION LAST_ONLY _ext)
    _mv_claim_test_name(${_name} "${_src}")
    if(_ext STREQUAL ".sh")
        add_test(NAME ${_name} COMMAND bash "${_src}")
    else()
        add_test(NAME ${_name} COMMAND /usr/bin/python3 "${_src}")
    endif()
    set_tests_properties(${_name} PROPERTIES LABELS script SKIP_RETURN_CODE 77)
endforeach()

if(_mv_test_names)
    set_tests_properties(${_mv_test_names} PROPERTIES
        TIMEOUT 600
        WORKING_DIRECTORY "${CMAKE_BINARY_DIR}"
        ENVIRONMENT "${MV_TEST_ENV}")
endif()
