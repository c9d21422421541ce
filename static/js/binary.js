// The container of the binary files the toolkit writes (toolkit/peaks.py pack_binary): 4 magic
// bytes, a little-endian uint32 header length, the header as UTF-8 JSON, then the data. Pure.

/**
 * @param {ArrayBuffer} buffer
 * @param {string} magic e.g. 'GTPK' (peaks), 'GTSG' (spectrogram)
 * @param {string} what named in the error messages, e.g. 'waveform peaks'
 * @returns {{header: object, offset: number}} the parsed header and where the data starts
 */
export function readBinaryHeader (buffer, magic, what) {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < 8) throw new Error(`the ${what} file is empty or truncated`)
  if (String.fromCharCode(...new Uint8Array(buffer, 0, 4)) !== magic) throw new Error(`not a ${what} file`)
  const length = new DataView(buffer).getUint32(4, true)
  if (8 + length > buffer.byteLength) throw new Error(`the ${what} header is truncated`)
  try {
    return { header: JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, length))), offset: 8 + length }
  } catch {
    throw new Error(`the ${what} header is not valid JSON`)
  }
}
