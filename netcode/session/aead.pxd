# C types for aead.py when Cython compiles it (an "augmenting" .pxd): the source stays plain
# Python (cryptography's AESGCM) and runs as such where there is no compiler; compiled, it
# calls OpenSSL's libcrypto with a cipher context kept per key.
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcpy

cdef extern from "openssl/evp.h" nogil:
    ctypedef struct EVP_CIPHER_CTX
    ctypedef struct EVP_CIPHER
    EVP_CIPHER_CTX *EVP_CIPHER_CTX_new()
    void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *ctx)
    const EVP_CIPHER *EVP_aes_256_gcm()
    int EVP_CipherInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, void *impl,
                          const unsigned char *key, const unsigned char *iv, int enc)
    int EVP_CipherUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl, const unsigned char *inp, int inl)
    int EVP_CipherFinal_ex(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl)
    int EVP_CIPHER_CTX_ctrl(EVP_CIPHER_CTX *ctx, int type, int arg, void *ptr)
    int EVP_CTRL_GCM_GET_TAG, EVP_CTRL_GCM_SET_TAG


cdef class PacketAead:
    cdef readonly object aead
    cdef readonly bint encrypt
    cdef EVP_CIPHER_CTX *_ctx
    cdef unsigned char _iv[12]
    cdef unsigned char _tag[16]

    @cython.locals(h=cython.Py_ssize_t, k=cython.Py_ssize_t, p=cython.Py_ssize_t, n=cython.int, out=cython.p_uchar, packet=bytes)
    cpdef bytes seal(self, bytes head, bytes payload, unsigned long long counter, bytes lead=*)

    @cython.locals(p=cython.Py_ssize_t, n=cython.int, src=cython.p_uchar, out=cython.p_uchar, opened=bytes)
    cpdef bytes open(self, bytes packet, Py_ssize_t h, unsigned long long counter)


@cython.locals(i=cython.int)
cdef void _nonce(unsigned char *iv, unsigned long long counter) noexcept
