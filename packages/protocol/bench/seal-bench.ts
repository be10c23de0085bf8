// Owned by the lead: measures signing, verification, sealing and opening of
// dossiers through the protocol API. Filled in once those exist.
export interface SealingFigures {
  signPerSec: number;
  verifyPerSec: number;
  sealPerSec1: number;
  openPerSec1: number;
  sealPerSec10: number;
}

export function measureSealing(): Promise<SealingFigures> {
  return Promise.reject(new Error('measureSealing is not implemented yet'));
}
