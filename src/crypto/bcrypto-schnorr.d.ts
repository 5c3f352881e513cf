// The part of bcrypto's native BIP-340 module (libsecp256k1 through N-API) that src/crypto/secp256k1.ts
// uses. It asserts Buffer.isBuffer on every argument.
declare module 'bcrypto/lib/native/schnorr-libsecp256k1.js' {
  const schnorr: {
    /** The x-only public key (32 bytes); throws for a secret outside [1, n) or not 32 bytes. */
    publicKeyCreate(secretKey: Buffer): Buffer;
    /** Throws unless the message and the auxiliary randomness are 32 bytes and the secret is valid. */
    sign(message: Buffer, secretKey: Buffer, aux: Buffer): Buffer;
    /** False, never a throw, for any message, signature or key of the wrong length or not valid. */
    verify(message: Buffer, signature: Buffer, publicKey: Buffer): boolean;
  };
  export default schnorr;
}
