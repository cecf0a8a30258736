// Package signature signs and verifies the provider's records in standard
// formats, so that tools outside this project can check them too: keys in
// PEM (PKCS#8 private keys, PKIX public keys), envelopes in DSSE, statements
// in in-toto v1, build provenance in SLSA v1.
//
// Every writer signs through Sign (or AddSignature to countersign) and every
// reader verifies through Verify; nothing else here touches key material.
//
// The package has no dependency on Terraform.
package signature

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// Algorithm names the two key types the package supports.
type Algorithm string

const (
	// Ed25519 keys sign the DSSE pre-authentication encoding itself and
	// their signatures are 64 raw bytes.
	Ed25519 Algorithm = "ed25519"
	// ECDSAP256 keys sign the SHA-256 of the pre-authentication encoding
	// and their signatures are ASN.1 DER, as cosign expects.
	ECDSAP256 Algorithm = "ecdsa-p256"
)

// Signer holds a private key that signs envelopes.
type Signer struct {
	key crypto.Signer
	pub *Verifier
}

// Verifier holds a public key that verifies envelopes.
type Verifier struct {
	key  crypto.PublicKey
	alg  Algorithm
	der  []byte // PKIX DER
	id   string
	name string // the principals of an allowed_signers line, or an SSH key's comment
}

// KeyID is the lower-case hex SHA-256 of the key's PKIX (SubjectPublicKeyInfo)
// DER encoding, so anyone can compute it from the public key file:
//
//	openssl pkey -pubin -in pub.pem -outform DER | sha256sum
func (v *Verifier) KeyID() string { return v.id }

// Algorithm is the key's type.
func (v *Verifier) Algorithm() Algorithm { return v.alg }

// Name is a display name for the key, not part of its identity: the
// principals of the allowed_signers line it was read from, else the
// comment of its SSH public key line; "" for a PEM key. Nothing checks it;
// it is printable (see keyLabel): anything a terminal would act on is
// escaped, and it is cut at maxKeyLabel characters.
func (v *Verifier) Name() string { return v.name }

// Label is the key's ID followed by its name in parentheses, if any: how
// messages show a trusted key.
func (v *Verifier) Label() string {
	if v.name == "" {
		return v.id
	}
	return v.id + " (" + v.name + ")"
}

// PEM is the public key as one PKIX "PUBLIC KEY" PEM block.
func (v *Verifier) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: v.der})
}

// KeyID is the ID of the signer's public key (see Verifier.KeyID).
func (s *Signer) KeyID() string { return s.pub.id }

// Public is the verifier of the signer's signatures.
func (s *Signer) Public() *Verifier { return s.pub }

// utf8BOM is the byte order mark some editors write at the start of a
// UTF-8 file: skipped before a key file is read.
var utf8BOM = []byte("\xef\xbb\xbf")

// LoadSigner reads one unencrypted PKCS#8 "PRIVATE KEY" PEM block holding an
// Ed25519 or ECDSA P-256 key, as written by
//
//	openssl genpkey -algorithm ed25519
//	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256
//
// or one unencrypted OpenSSH private key of the same two types, as written
// by `ssh-keygen -t ed25519` or `ssh-keygen -t ecdsa -b 256` (with -N "").
// An SSH key signs exactly as its PEM form does (DSSE, not the SSHSIG
// format) and has the same key ID, so its public key may be trusted in
// either form.
func LoadSigner(pemBytes []byte) (*Signer, error) {
	pemBytes = bytes.TrimPrefix(pemBytes, utf8BOM) // an editor's byte order mark
	block, rest := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found: a signing key must be a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, fmt.Errorf("more than one PEM block (%q, then %q): give exactly one private key", block.Type, next.Type)
	}
	switch block.Type {
	case "PRIVATE KEY":
		if _, encrypted := block.Headers["Proc-Type"]; encrypted {
			return nil, errEncrypted
		}
	case "ENCRYPTED PRIVATE KEY":
		return nil, errEncrypted
	case "PUBLIC KEY":
		return nil, errors.New("this is a public key, not a private key: give the signing key (-----BEGIN PRIVATE KEY-----); its public key goes in the trusted keys")
	case "EC PRIVATE KEY":
		return nil, errors.New("SEC 1 EC private keys are not read: convert to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.p8.pem`")
	case "RSA PRIVATE KEY":
		return nil, errRSA
	case "OPENSSH PRIVATE KEY":
		return loadSSHSigner(pemBytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key: a signing key must be a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)", block.Type)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("reading the PKCS#8 private key: %w", err)
	}
	return signerOf(parsed)
}

// signerOf is the signer of a parsed private key, Ed25519 or ECDSA P-256.
func signerOf(parsed any) (*Signer, error) {
	var key crypto.Signer
	switch k := parsed.(type) {
	case ed25519.PrivateKey:
		key = k
	case *ecdsa.PrivateKey:
		key = k
	case *rsa.PrivateKey:
		return nil, errRSA
	case *ecdh.PrivateKey:
		return nil, errors.New("X25519/ECDH keys cannot sign: use Ed25519 or ECDSA P-256")
	default:
		return nil, fmt.Errorf("unsupported private key type %T: use Ed25519 or ECDSA P-256", parsed)
	}
	pub, err := newVerifier(key.Public())
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, pub: pub}, nil
}

var (
	errEncrypted = errors.New("the private key is encrypted: give an unencrypted PKCS#8 key (`openssl pkcs8 -topk8 -nocrypt`) and protect the file or variable instead")
	errRSA       = errors.New("RSA keys are not supported: use Ed25519 or ECDSA P-256")
)

// ParsePublicKeys reads trusted public keys, each Ed25519 or ECDSA P-256,
// in one of two forms, told apart by the text:
//
//   - PEM: one or more PKIX "PUBLIC KEY" blocks (as written by
//     `openssl pkey -pubout` or `ssh-keygen -e -m PKCS8 -f key.pub`); text
//     around the blocks is ignored.
//   - SSH: one key a line, as in a .pub file, authorized_keys or an
//     allowed_signers file (see parseSSHPublicKeys).
//
// One input holds one form: PEM blocks and SSH key lines together are
// refused. A key given twice is returned once (with its first name).
func ParsePublicKeys(in []byte) ([]*Verifier, error) {
	in = bytes.TrimPrefix(in, utf8BOM) // an editor's byte order mark, not part of a key or its name
	if !bytes.Contains(in, []byte("-----BEGIN ")) {
		return parseSSHPublicKeys(in)
	}
	if n := sshLineOutsidePEM(in); n > 0 {
		return nil, fmt.Errorf("line %d is an SSH public key, but the text holds PEM blocks too: give PEM keys and SSH keys "+
			"as separate texts (a list entry or a file each)", n)
	}
	return parsePEMPublicKeys(in)
}

// parsePEMPublicKeys reads one or more PKIX "PUBLIC KEY" PEM blocks.
func parsePEMPublicKeys(pemBytes []byte) ([]*Verifier, error) {
	var out []*Verifier
	seen := map[string]bool{}
	for n := 1; ; n++ {
		var block *pem.Block
		block, pemBytes = pem.Decode(pemBytes)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			if block.Type == "OPENSSH PRIVATE KEY" {
				return nil, fmt.Errorf("PEM block %d is an OpenSSH private key: trust its public key instead (the key's .pub file, or `ssh-keygen -y -f key`), and keep the private key out of the configuration", n)
			}
			if block.Type == "PRIVATE KEY" || block.Type == "ENCRYPTED PRIVATE KEY" || block.Type == "EC PRIVATE KEY" || block.Type == "RSA PRIVATE KEY" {
				return nil, fmt.Errorf("PEM block %d is a private key (%q): trust its public key instead (`openssl pkey -in key.pem -pubout`), and keep the private key out of the configuration", n, block.Type)
			}
			return nil, fmt.Errorf("PEM block %d is %q, not a public key (-----BEGIN PUBLIC KEY-----)", n, block.Type)
		}
		parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: reading the public key: %w", n, err)
		}
		v, err := newVerifier(parsed)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		if !seen[v.id] {
			seen[v.id] = true
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, errors.New(errNoKey)
	}
	return out, nil
}

func newVerifier(pub crypto.PublicKey) (*Verifier, error) {
	var alg Algorithm
	switch k := pub.(type) {
	case ed25519.PublicKey:
		alg = Ed25519
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA curve %s is not supported: use P-256 (or Ed25519)", k.Curve.Params().Name)
		}
		alg = ECDSAP256
	case *rsa.PublicKey:
		return nil, errRSA
	default:
		return nil, fmt.Errorf("unsupported public key type %T: use Ed25519 or ECDSA P-256", pub)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return &Verifier{key: pub, alg: alg, der: der, id: hex.EncodeToString(sum[:])}, nil
}

// sign signs the DSSE pre-authentication encoding. Both signatures are
// deterministic (Ed25519 by design, ECDSA by RFC 6979), so signing the same
// statement twice writes the same envelope.
func (s *Signer) sign(pae []byte) ([]byte, error) {
	switch k := s.key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, pae), nil
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(pae)
		return k.Sign(nil, h[:], crypto.SHA256) // nil: RFC 6979, ASN.1 DER
	}
	return nil, fmt.Errorf("unsupported key type %T", s.key)
}

func (v *Verifier) verify(pae, sig []byte) bool {
	switch k := v.key.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, pae, sig)
	case *ecdsa.PublicKey:
		h := sha256.Sum256(pae)
		return ecdsa.VerifyASN1(k, h[:], sig)
	}
	return false
}
