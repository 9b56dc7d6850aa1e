export { SymmetricEncryptor, type MessageEncryptor, type EncryptStreamOptions } from './encrypt.js';
export { decryptMessage, type DecryptKeys } from './decrypt.js';
export { gpgEncoder, gzipEncoder, plainEncoder, decodeStored, type Encoder, type StoredEncoding } from './encoding.js';
