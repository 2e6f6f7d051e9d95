/* Delivery of audit messages to an audit record repository the way IHE ATNA (ITI-20) expects:
 * RFC 5424 syslog messages carried over TLS (RFC 5425) with octet-counting framing. TLS is
 * OpenSSL 3's, TLS 1.2 or later, and the server must present a certificate that chains to the
 * given CA and names the host; client certificates are supported for mutual authentication. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "audit/export_int.h"

struct MvSyslog {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

/* The first OpenSSL error as text (no key material is ever in these messages). */
static const char *ssl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0) {
        snprintf(buf, cap, "no detail");
        return buf;
    }
    ERR_error_string_n(e, buf, cap);
    return buf;
}

/* Connects to host:port within timeout_ms; returns the socket or -1 with err set. */
static int tcp_connect(const char *host, const char *port, int timeout_ms, MvError *err)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, rc, last_errno = 0;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s:%s: cannot resolve: %s", host, port,
                     gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        struct pollfd pfd;
        int flags, soerr = 0;
        socklen_t slen = sizeof soerr;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pfd.fd = fd;
            pfd.events = POLLOUT;
            rc = poll(&pfd, 1, timeout_ms);
            if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr == 0)
                rc = 0;
            else {
                errno = rc == 0 ? ETIMEDOUT : soerr != 0 ? soerr : errno;
                rc = -1;
            }
        }
        if (rc == 0) {
            struct timeval tv;
            fcntl(fd, F_SETFL, flags);
            tv.tv_sec = timeout_ms / 1000;
            tv.tv_usec = (timeout_ms % 1000) * 1000;
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            break;
        }
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s:%s: cannot connect: %s", host, port,
                     strerror(last_errno != 0 ? last_errno : ECONNREFUSED));
    return fd;
}

MvStatus mv_syslog_connect(const MvSyslogOptions *opt, MvSyslog **out, MvError *err)
{
    MvSyslog *s = NULL;
    MvStatus st = MV_OK;
    char reason[256];
    int timeout_ms;
    long verify;

    *out = NULL;
    if (opt == NULL || opt->host == NULL || opt->host[0] == '\0' || opt->port == NULL || opt->port[0] == '\0')
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "syslog: host and port are required");
    if ((opt->cert_file == NULL) != (opt->key_file == NULL))
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "syslog: a client certificate needs its key, and a key its certificate");
    timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 10000;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    s->fd = -1;
    ERR_clear_error();
    s->ctx = SSL_CTX_new(TLS_client_method());
    if (s->ctx == NULL) {
        st = mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "syslog: TLS context: %s",
                          ssl_reason(reason, sizeof reason));
        goto out;
    }
    SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
    if (opt->ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(s->ctx, opt->ca_file, NULL) != 1) {
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: cannot load CA certificates: %s",
                              opt->ca_file, ssl_reason(reason, sizeof reason));
            goto out;
        }
    } else if (SSL_CTX_set_default_verify_paths(s->ctx) != 1) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "syslog: no default CA store: %s",
                          ssl_reason(reason, sizeof reason));
        goto out;
    }
    if (opt->cert_file != NULL) {
        if (SSL_CTX_use_certificate_chain_file(s->ctx, opt->cert_file) != 1) {
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: cannot load the client certificate: %s",
                              opt->cert_file, ssl_reason(reason, sizeof reason));
            goto out;
        }
        if (SSL_CTX_use_PrivateKey_file(s->ctx, opt->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(s->ctx) != 1) {
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                              "%s: cannot load the client key, or it does not match the certificate: %s",
                              opt->key_file, ssl_reason(reason, sizeof reason));
            goto out;
        }
    }
    s->fd = tcp_connect(opt->host, opt->port, timeout_ms, err);
    if (s->fd < 0) {
        st = MV_ERR_IO;
        goto out;
    }
    s->ssl = SSL_new(s->ctx);
    if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1) {
        st = mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "syslog: TLS session: %s",
                          ssl_reason(reason, sizeof reason));
        goto out;
    }
    /* RFC 5425 5.2: the server's identity is checked against the configured name (or address). */
    {
        X509_VERIFY_PARAM *param = SSL_get0_param(s->ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(param, opt->host) != 1) {
            ERR_clear_error();
            if (SSL_set1_host(s->ssl, opt->host) != 1 || SSL_set_tlsext_host_name(s->ssl, opt->host) != 1) {
                st = mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "syslog: cannot set the server name");
                goto out;
            }
        }
    }
    if (SSL_connect(s->ssl) != 1) {
        verify = SSL_get_verify_result(s->ssl);
        if (verify != X509_V_OK)
            st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                              "%s:%s: the server's certificate is not trusted: %s", opt->host, opt->port,
                              X509_verify_cert_error_string(verify));
        else
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s:%s: TLS handshake failed: %s", opt->host,
                              opt->port, ssl_reason(reason, sizeof reason));
        goto out;
    }
    *out = s;
    s = NULL;
out:
    if (s != NULL) {
        SSL_free(s->ssl);
        if (s->fd >= 0)
            close(s->fd);
        SSL_CTX_free(s->ctx);
        free(s);
    }
    ERR_clear_error();
    return st;
}

/* Appends field (printable US-ASCII 33..126, at most max bytes) or "-" (RFC 5424 6.2). */
static void header_field(MvBuf *b, const char *field, size_t max)
{
    size_t n = 0;

    if (field == NULL || field[0] == '\0') {
        mv__buf_str(b, "-");
        return;
    }
    for (const unsigned char *p = (const unsigned char *)field; *p != '\0' && n < max; p++, n++) {
        char c = *p >= 33 && *p <= 126 ? (char)*p : '_';
        mv__buf_add(b, &c, 1);
    }
}

MvStatus mv_syslog_format(int facility, int severity, const char *timestamp, const char *hostname,
                          const char *app_name, const char *procid, const char *msgid, const char *msg,
                          size_t msg_len, char **out, size_t *out_len, MvError *err)
{
    MvBuf b;

    *out = NULL;
    *out_len = 0;
    if (facility < 0 || facility > 23 || severity < 0 || severity > 7)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "syslog: facility or severity out of range");
    mv__buf_init(&b, msg_len + 4096);
    /* RFC 5424 6.2.1: PRI = facility * 8 + severity; VERSION 1. */
    mv__buf_printf(&b, "<%d>1 ", facility * 8 + severity);
    header_field(&b, timestamp, 32);
    mv__buf_str(&b, " ");
    header_field(&b, hostname, 255);
    mv__buf_str(&b, " ");
    header_field(&b, app_name, 48);
    mv__buf_str(&b, " ");
    header_field(&b, procid, 128);
    mv__buf_str(&b, " ");
    header_field(&b, msgid, 32);
    /* No structured data; MSG is UTF-8 and says so with a BOM (RFC 5424 6.4). */
    mv__buf_str(&b, " - \xEF\xBB\xBF");
    mv__buf_add(&b, msg, msg_len);
    if (b.failed) {
        mv__buf_free(&b);
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    }
    *out = b.data;
    *out_len = b.len;
    return MV_OK;
}

static MvStatus write_all(MvSyslog *s, const char *data, size_t len, MvError *err)
{
    while (len > 0) {
        size_t written = 0;
        errno = 0;
        if (SSL_write_ex(s->ssl, data, len, &written) != 1) {
            char reason[256];
            int code = SSL_get_error(s->ssl, 0);
            if (code == SSL_ERROR_SYSCALL || code == SSL_ERROR_ZERO_RETURN)
                return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET,
                                    "syslog: the server closed the connection (%s)",
                                    errno != 0 ? strerror(errno) : "end of stream");
            return mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "syslog: TLS write failed: %s",
                                ssl_reason(reason, sizeof reason));
        }
        data += written;
        len -= written;
    }
    return MV_OK;
}

MvStatus mv_syslog_send(MvSyslog *s, const char *msg, size_t len, MvError *err)
{
    char prefix[32];
    int n;
    MvStatus st;

    char *frame;

    /* RFC 5425 4.3: SYSLOG-FRAME = MSG-LEN SP SYSLOG-MSG, MSG-LEN in octets. One write, so that
     * a frame usually travels in one TLS record. */
    n = snprintf(prefix, sizeof prefix, "%zu ", len);
    frame = malloc((size_t)n + len);
    if (frame == NULL) {
        st = write_all(s, prefix, (size_t)n, err);
        return st == MV_OK ? write_all(s, msg, len, err) : st;
    }
    memcpy(frame, prefix, (size_t)n);
    memcpy(frame + n, msg, len);
    st = write_all(s, frame, (size_t)n + len, err);
    free(frame);
    return st;
}

MvStatus mv_syslog_close(MvSyslog *s, MvError *err)
{
    MvStatus st = MV_OK;

    if (s == NULL)
        return MV_OK;
    if (s->ssl != NULL) {
        int rc = SSL_shutdown(s->ssl);
        if (rc < 0)
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "syslog: TLS shutdown failed");
        else if (rc == 0) {
            /* Our close_notify is sent. The server's answer is the only sign that it read
             * everything before the connection ended (syslog has no acknowledgements). */
            char buf[256];
            size_t got;
            while (SSL_read_ex(s->ssl, buf, sizeof buf, &got) == 1)
                ;
            if (SSL_get_error(s->ssl, 0) != SSL_ERROR_ZERO_RETURN)
                st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET,
                                  "syslog: the server ended the connection without confirming the end of the "
                                  "session; messages sent may have been lost");
        }
        SSL_free(s->ssl);
    }
    if (s->fd >= 0)
        close(s->fd);
    SSL_CTX_free(s->ctx);
    free(s);
    ERR_clear_error();
    return st;
}
