export * from './tar-header.js';
export { TarReader } from './tar-reader.js';
export * from './entry-name.js';
export { VolumeWriter, type TarBlock, type FinishedVolume, type VolumeWriterOptions } from './volume-writer.js';
export { EncodedFileWriter, type EncodedFileResult } from './encoded-file.js';
