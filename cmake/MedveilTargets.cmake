# Helpers shared by the library targets of CMakeLists.txt: usage requirements of the object
# libraries, and the pkg-config file, written at install time so that its prefix is the one
# actually installed to (also with `cmake --install BUILD --prefix DIR`).
include_guard(GLOBAL)

# mv_library_usage(<object-library>): public and private include directories and the
# libraries whose headers the library sources include.
function(mv_library_usage target)
    target_include_directories(${target}
        PUBLIC "${MV_PUBLIC_INCLUDE}"
        PRIVATE "${MV_PRIVATE_INCLUDE}")
    target_link_libraries(${target} PRIVATE ${MV_LINK_DEPS})
endfunction()

# mv_install_pkgconfig(<template>): installs <libdir>/pkgconfig/medveil.pc generated from
# <template> with @MV_PC_PREFIX@, @MV_PC_LIBDIR@, @MV_PC_INCLUDEDIR@ and @PROJECT_VERSION@.
function(mv_install_pkgconfig template)
    set(_out "${CMAKE_BINARY_DIR}/pkgconfig/medveil.pc")
    set(_script "${CMAKE_BINARY_DIR}/pkgconfig/medveil-pc.cmake")
    # Evaluated when installing: CMAKE_INSTALL_PREFIX is then the prefix being installed to.
    file(CONFIGURE OUTPUT "${_script}" @ONLY CONTENT [=[
set(PROJECT_VERSION "@PROJECT_VERSION@")
set(MV_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
foreach(_kind LIBDIR INCLUDEDIR)
    if(_kind STREQUAL "LIBDIR")
        set(_dir "@CMAKE_INSTALL_LIBDIR@")
    else()
        set(_dir "@CMAKE_INSTALL_INCLUDEDIR@")
    endif()
    if(IS_ABSOLUTE "${_dir}")
        set(MV_PC_${_kind} "${_dir}")
    else()
        set(MV_PC_${_kind} "\${prefix}/${_dir}")
    endif()
endforeach()
configure_file("@template@" "@_out@" @ONLY)
]=])
    install(SCRIPT "${_script}")
    install(FILES "${_out}" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endfunction()
