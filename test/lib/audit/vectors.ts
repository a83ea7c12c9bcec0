import type { AuditContent } from '../../../lib/audit/chain.js';
import { CHECKPOINT_FORMAT, type CheckpointBody } from '../../../lib/audit/checkpoint.js';

/**
 * The test vectors of docs/audit-format.md, byte for byte. Changing anything here means the
 * published format changed: existing logs and independent verifiers would break.
 */
export const VECTOR_ROWS: { content: AuditContent; canonical: string; hash: string }[] = [
  {
    content: {
      seq: 1, occurredAt: '2026-01-02T03:04:05.678Z', action: 'reveal', actor: 'alice', roles: ['investigator'], clientAddress: '10.0.0.7',
      requestId: 'req-1', purpose: 'fraud case 4711', ticket: 'FRAUD-1', tokens: ['ip_v1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
      fieldCounts: { ip: 1 }, outcome: 'allowed', reason: null, prevHash: null,
    },
    canonical:
      '{"action":"reveal","actor":"alice","client_address":"10.0.0.7","field_counts":{"ip":1},"occurred_at":"2026-01-02T03:04:05.678Z",' +
      '"outcome":"allowed","prev_hash":null,"purpose":"fraud case 4711","reason":null,"request_id":"req-1","roles":["investigator"],' +
      '"seq":1,"ticket":"FRAUD-1","tokens":["ip_v1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]}',
    hash: '408f453882bfa2b02fbd45b4e092d9b1d9556831d4f07580ffea2ebb7f5aca74',
  },
  {
    content: {
      seq: 2, occurredAt: '2026-01-02T03:04:06.000Z', action: 'reveal', actor: 'mallory', roles: ['analyst', 'investigator'], clientAddress: null,
      requestId: null, purpose: 'Überprüfung "quoted" \u2028 line\nbreak', ticket: null, tokens: [], fieldCounts: { ip: 0, device_id: 2 },
      outcome: 'denied', reason: 'role analyst may not reveal device_id',
      prevHash: Buffer.from('408f453882bfa2b02fbd45b4e092d9b1d9556831d4f07580ffea2ebb7f5aca74', 'hex'),
    },
    canonical:
      '{"action":"reveal","actor":"mallory","client_address":null,"field_counts":{"device_id":2,"ip":0},"occurred_at":"2026-01-02T03:04:06.000Z",' +
      '"outcome":"denied","prev_hash":"408f453882bfa2b02fbd45b4e092d9b1d9556831d4f07580ffea2ebb7f5aca74",' +
      '"purpose":"Überprüfung \\"quoted\\" \u2028 line\\nbreak","reason":"role analyst may not reveal device_id","request_id":null,' +
      '"roles":["analyst","investigator"],"seq":2,"ticket":null,"tokens":[]}',
    hash: 'b86b3a70cf4352528c627c6a588e09eaeceba7fde298ec0d8ff216f251ccd866',
  },
  {
    content: {
      seq: 3, occurredAt: '2026-01-02T03:05:00.001Z', action: 'audit_verify', actor: 'audrey', roles: ['auditor'], clientAddress: '::1',
      requestId: 'r-3', purpose: null, ticket: null, tokens: [], fieldCounts: {}, outcome: 'allowed', reason: 'chain ok checked=2 😀',
      prevHash: Buffer.from('b86b3a70cf4352528c627c6a588e09eaeceba7fde298ec0d8ff216f251ccd866', 'hex'),
    },
    canonical:
      '{"action":"audit_verify","actor":"audrey","client_address":"::1","field_counts":{},"occurred_at":"2026-01-02T03:05:00.001Z",' +
      '"outcome":"allowed","prev_hash":"b86b3a70cf4352528c627c6a588e09eaeceba7fde298ec0d8ff216f251ccd866","purpose":null,' +
      '"reason":"chain ok checked=2 😀","request_id":"r-3","roles":["auditor"],"seq":3,"ticket":null,"tokens":[]}',
    hash: 'a220982a335a39e8816c4bb2e6ff8b678eaece0181e80b6993d02f440a6d0e97',
  },
];

export const VECTOR_PUBLIC_KEY = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHEF+CCo5EPi8n70RioPmN7GoojNY
hEctPhKyflgbc8JPEz2ZSHETjQH/DOP/b/ABpoFyb6d4iooazB/V2Asupw==
-----END PUBLIC KEY-----
`;

export const VECTOR_CHECKPOINT: CheckpointBody = {
  format: CHECKPOINT_FORMAT,
  origin: 'example.com/tokenvault/audit',
  index: 1,
  seq: 3,
  head_hash: 'a220982a335a39e8816c4bb2e6ff8b678eaece0181e80b6993d02f440a6d0e97',
  row_count: 3,
  time: '2026-01-02T03:06:00.000Z',
  prev_digest: null,
  key_id: '1d7ee2717b5058cdbd337d9c65bc3b84cf5ff028fa3c7b0d5b63dbacf0345473',
  signer: 'local-only:vector',
};

export const VECTOR_CHECKPOINT_BYTES =
  '{"format":"tokenvault-audit-checkpoint/v1","head_hash":"a220982a335a39e8816c4bb2e6ff8b678eaece0181e80b6993d02f440a6d0e97","index":1,' +
  '"key_id":"1d7ee2717b5058cdbd337d9c65bc3b84cf5ff028fa3c7b0d5b63dbacf0345473","origin":"example.com/tokenvault/audit","prev_digest":null,' +
  '"row_count":3,"seq":3,"signer":"local-only:vector","time":"2026-01-02T03:06:00.000Z"}';

export const VECTOR_CHECKPOINT_DIGEST = 'a49c49b268cb23fa4dd0f9d2dec6a9ded35a4d556062df33c98539f8ec0ab549';

export const VECTOR_SIGNATURE = 'MEQCIEO8kxAYTTb8xG2RlJkm1M8PRkCN++/dZP2ylgaOzI9MAiAdQJZR+Z67ST3CC4/0MvLiBByUJrEVATidmjmJqcnO3w==';
