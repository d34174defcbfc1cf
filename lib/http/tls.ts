/**
 * TLS for Flint's HTTP servers, configured with Spark's SSL keys.
 *
 * Spark configures its standalone daemons' web servers under `spark.ssl.standalone.*`,
 * falling back option by option to `spark.ssl.*`; Flint reads the same keys for every
 * server a daemon runs (REST submission server, master UI, application API, worker UI),
 * so an operator's spark-defaults.conf carries over. Of Spark's options, Node's TLS can
 * honour the PEM pair of Spark 4 (`privateKey`, `certChain`, `privateKeyPassword`), a
 * PKCS#12 `keyStore` with its `keyStorePassword`, the lowest `protocol` and the
 * `enabledAlgorithms` (ciphers). A JKS keystore (Spark's default type) cannot be read
 * by Node and is refused with how to convert it. Unlike Spark's Jetty, Flint serves
 * HTTPS on the service's own port and runs no second plaintext port that redirects.
 *
 * `serverTlsFromConfig` reads the files once, at start-up: a missing or unreadable
 * file is a start-up error naming the key, never a server that silently falls back
 * to plaintext. `clientCaFromConfig` is the client side: the PEM bundle of
 * `spark.ssl[.standalone].trustStore` that Flint's clients trust besides the system's.
 */
import { readFileSync } from 'node:fs';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { ConfigError, type FlintConfig } from '../../protocol/config.ts';

/** ServerTls: what listenHttp hands node:https. */
export type ServerTls = Pick<TlsOptions, 'key' | 'cert' | 'pfx' | 'passphrase' | 'minVersion' | 'ciphers'>;

/** SSL_NAMESPACES: the namespace a daemon's servers read, then its fallback. */
const SSL_NAMESPACES = ['spark.ssl.standalone', 'spark.ssl'] as const;

function sslOption<T>(config: FlintConfig, option: string): { value: T | undefined; key: string } {
  for (const ns of SSL_NAMESPACES) {
    const key = `${ns}.${option}`;
    const value = config.get<T | undefined>(key);
    if (value !== undefined) return { value, key };
  }
  return { value: undefined, key: `spark.ssl.standalone.${option}` };
}

function readKeyFile(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(`${key}=${path}: cannot read the file: ${(error as Error).message}`);
  }
}

/**
 * serverTlsFromConfig: the TLS options of a daemon's servers, or undefined when
 * spark.ssl[.standalone].enabled is false. Checks the combination (a key needs its
 * chain, a keystore must be PKCS#12) and reads the files.
 */
export function serverTlsFromConfig(config: FlintConfig): ServerTls | undefined {
  if (!sslOption<boolean>(config, 'enabled').value) return undefined;
  const privateKey = sslOption<string>(config, 'privateKey');
  const certChain = sslOption<string>(config, 'certChain');
  const keyStore = sslOption<string>(config, 'keyStore');
  const tls: ServerTls = {};
  if (keyStore.value !== undefined) {
    const type = sslOption<string>(config, 'keyStoreType');
    if (type.value === 'JKS') {
      throw new ConfigError(
        `${type.key}=JKS: Node cannot read Java keystores; convert it (keytool -importkeystore -srckeystore ${keyStore.value} -destkeystore flint.p12 -deststoretype PKCS12) or give ${privateKey.key} and ${certChain.key} (PEM)`,
      );
    }
    tls.pfx = readKeyFile(keyStore.value, keyStore.key);
    tls.passphrase = sslOption<string>(config, 'keyStorePassword').value;
  } else if (privateKey.value !== undefined && certChain.value !== undefined) {
    tls.key = readKeyFile(privateKey.value, privateKey.key);
    tls.cert = readKeyFile(certChain.value, certChain.key);
    tls.passphrase = sslOption<string>(config, 'privateKeyPassword').value;
  } else {
    throw new ConfigError(
      `spark.ssl.standalone.enabled (or spark.ssl.enabled) is true but no key is configured: set ${privateKey.key} and ${certChain.key} (PEM files), or ${keyStore.key} (PKCS#12)`,
    );
  }
  const protocol = sslOption<SecureContextOptions['minVersion']>(config, 'protocol').value;
  tls.minVersion = protocol ?? 'TLSv1.2';
  const ciphers = sslOption<string>(config, 'enabledAlgorithms').value;
  if (ciphers) tls.ciphers = ciphers.split(',').map((c) => c.trim()).filter(Boolean).join(':');
  return tls;
}

/** clientCaFromConfig: the PEM CA bundle clients trust for Flint's servers (spark.ssl[.standalone].trustStore), if set. */
export function clientCaFromConfig(config: FlintConfig): { path: string; key: string } | undefined {
  const trustStore = sslOption<string>(config, 'trustStore');
  return trustStore.value === undefined ? undefined : { path: trustStore.value, key: trustStore.key };
}
