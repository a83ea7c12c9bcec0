import { createPrivateKey, type KeyObject } from 'node:crypto';

/**
 * Published signed-note, checkpoint and cosignature vectors, pinned with their source. Ed25519 is
 * deterministic, so the vectors whose private key is published are reproduced byte for byte.
 */

/** An Ed25519 private key from its 32-byte RFC 8032 seed (PKCS#8 wrapping of the seed). */
export function ed25519FromSeed(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
}

/** The seed inside a Go note signer key `PRIVATE+KEY+<name>+<hash>+base64(0x01 || seed)`. */
export function seedOfSignerKey(skey: string): Buffer {
  const material = Buffer.from(skey.split('+').slice(4).join('+'), 'base64');
  if (material[0] !== 0x01 || material.length !== 33) throw new Error('not an Ed25519 signer key');
  return material.subarray(1);
}

/** golang.org/x/mod sumdb/note/note_test.go (TestNewVerifier, TestSign, TestOpen, TestVerifierList). */
export const SUMDB = {
  peterSignerKey: 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz',
  peterVerifierKey: 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
  enochVerifierKey: 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop',
  text: "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n",
  peterSig: '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n',
  enochSig: '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n',
  /** "wrong length key, with adjusted key hash" and "unknown algorithm, with adjusted key hash". */
  badVerifierKeys: [
    'PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==',
    'PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
  ],
};

/** c2sp.org/signed-note v1.0.0, section "Example" (C2SP/C2SP signed-note.md). */
export const SIGNED_NOTE_SPEC_EXAMPLE = {
  verifierKey: 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k',
  note: 'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n',
};

/**
 * github.com/transparency-dev/formats note/note_verifier_test.go (commit
 * 0b850f1a7b4a5b70deeacac6535e4b8023809d21): real ECDSA (type 0x02) checkpoints of Sigstore Rekor
 * and the Pixel binary transparency log, and a CT log key of type 0x05 (not supported here).
 */
export const ECDSA_NOTES = {
  rekor: {
    verifierKey: 'rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc=',
    note: 'Rekor\n798034\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n\n— rekor.sigstore.dev wNI9ajBEAiARInWIWyCdyG27CO6LPnPekyw20qO0YJfoaPaowGp/XgIgc+qEHS3+GKVClgqq20uDLet7MCoTURUCRdxwWBHHufk=\n',
  },
  pixel: {
    verifierKey: 'pixel6_transparency_log+91c16e30+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABN+4x0Jk1yTwvLFI9A4NDdGZcX0aiWVdWM5XJVy0M4VWD3AvyW5Q6Hs9A0mcDkpUoYgn+KKPNzFC0H3nN3q6JQ8=',
    note: 'DEFAULT\n10\nbsWRucJU5xJPHb5eBdOm6+DM+VelCZBuvtI3sHERJ9Y=\n\n— pixel6_transparency_log kcFuMDBFAiEAhqMAP8P6qf6QxtUJhzMhbN+MbZ9dwfUHzGQJmffJHtoCIGD0cNe47dHWBoPwYdgBCepB06/+g5O1FmYjXl06owL4\n',
  },
  ctLogKeyType5: 'ct.googleapis.com/logs/us1/argon2024+7deb49d0+BTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABB25bKnLaZTFXOa2pgO70rjcVEMXKJkMBgFQHZ1kwFlGK9zIAx0FtC2oCfeZQe0E++VXuiYE9hFSzhRlOy92K8A=',
};

/** transparency-dev/formats note/note_cosigv1_test.go: cosignature vkeys and a timestamp. */
export const COSIGNATURE_VECTORS = {
  /** A native type 0x04 vkey. */
  nativeVerifierKey: 'remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2',
  /** TestCoSigV1Timestamp "works": the base64 field of a cosignature line and its timestamp. */
  timestampedSignature: 'ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==',
  timestamp: 1727964367,
};

/**
 * github.com/transparency-dev/witness witness/witness_test.go (commit
 * 54dbcdd14f829a301b24b59f7c547c7dceebafa8): a log "monkeys" with its key, two signed checkpoints
 * (size 5, size 8), another log's key, and the witness's signer key.
 */
export const WITNESS_TEST = {
  monkeysVerifierKey: 'monkeys+db4d9f7e+AULaJMvTtDLHPUcUrjdDad9vDlh/PTfC2VV60JUtCfWT',
  monkeysSignerKey: 'PRIVATE+KEY+monkeys+db4d9f7e+ATWIAF3yVBG+Hv1rZFQoNt/BaURkLPtOFMAM2HrEeIr6',
  bananasVerifierKey: 'bananas+cf639f13+AaPjhFnPCQnid/Ql32KWhmh+uk72FVRfK+2DLmO3BI3M',
  witnessVerifierKey: 'witness+f13a86db+AdYV1Ztajd9BvyjP2HgpwrqYL6TjOwIjGMOq8Bu42xbN',
  witnessSignerKey: 'PRIVATE+KEY+witness+f13a86db+AaLa/dfyBhyo/m0Z7WCi98ENVZWtrP8pxgRNrx7tIWiA',
  init: 'monkeys\n5\n41smjBUiAU70EtKlT6lIOIYtRTYxYXsDB+XHfcvu/BE=\n\n— monkeys 202fftzGl3LVoqjXfwCFZZXs8I+5G22+Ek2K0AOyBuSJ/8/CZawNF+6fNlTKOCd622pbzJNkkJFWuw9DbicZCkEx9AY=\n',
  next: 'monkeys\n8\nV8K9aklZ4EPB+RMOk1/8VsJUdFZR77GDtZUQq84vSbo=\n\n— monkeys 202ffoUEboiQYpHzICeaFmoy3RNviHTpAxYrq/eO4QQVQMvu9UebKBMX2MJC76NLthZaKsnKbCA8GxrjePZhvDCH7Ag=\n',
};

/** c2sp.org/tlog-checkpoint v1.0.0 and tlog-cosignature: the example checkpoint (its keys are not published). */
export const CHECKPOINT_SPEC_EXAMPLE =
  'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n' +
  '— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n' +
  '— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n';

/**
 * docs/transparency-log.md §4: this project's checkpoint of the three rows of docs/audit-format.md,
 * signed by the log (Ed25519 seed of RFC 8032 §7.1 TEST 1) and cosigned by a witness (seed of TEST 2)
 * at 2026-01-02T03:06:00Z. Ed25519 is deterministic: the signatures are exact.
 */
export const DOCS_CHECKPOINT = {
  logSeed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  witnessSeed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
  logVerifierKey: 'example.com/tokenvault/audit+0835097c+AddamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea',
  witnessVerifierKey: 'example.com/tokenvault/witness+1cf7a5bd+BD1AF8PoQ4lakrcKp00bfrycmCzPLsSWjMDNVfEq9GYM',
  timestampMs: 1_767_323_160_000,
  note:
    'example.com/tokenvault/audit\n3\nOa+tQzJo3FQOZ2gCUyqNEG/UdewIqXnvIqG5gnl64K4=\n\n' +
    '— example.com/tokenvault/audit CDUJfN+ASe50npajiBCXMjGqbShLWqQPqdINVZNt235urZaPJNNCrPW8y4gJFLSJ0L62rArvMbTHkUu+fsCYJR34Lgg=\n' +
    '— example.com/tokenvault/witness HPelvQAAAABpVzYYaccyVOYfRCjb2KDPg6EaETU5uILxzdU/5+QM3B3sRpgJpW+cFQZQdZeQwOD9X7892R4FH4HOoWy0V5gp6yXVAQ==\n',
};
