export { SymmetricEncryptor, PublicKeyEncryptor, type MessageEncryptor, type EncryptStreamOptions } from './encrypt.js';
export { decryptMessage, type DecryptKeys, type DecryptOptions, type SignatureReport } from './decrypt.js';
export { readPublicKeys, readSecretKey, keyIds, fingerprint, type PublicKey, type SecretKey } from './keys.js';
export { Signer } from './signature-packet.js';
export { DEFAULT_COMPRESS_LEVEL } from './chunked-deflate.js';
export { gpgEncoder, gzipEncoder, plainEncoder, decodeStored, type Encoder, type StoredEncoding } from './encoding.js';
