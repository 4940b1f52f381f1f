// Package server is the OCI Distribution Spec v1.1 HTTP API of berth's
// registry: blobs, uploads, manifests, tags, catalog and referrers, one file
// per resource, over a registry/storage.Driver.
//
// Storage layout (every path is a storage.Driver object or prefix):
//
//	blobs/<alg>/<hex>/link             {"data":"data/<id>","size":N}: where the
//	                                   blob's verified bytes are
//	data/<id>                          bytes written by upload <id> (or a
//	                                   manifest); never moved, only linked
//	uploads/<id>                       upload session: repository, committed
//	                                   offset, marshalled sha256 state, start
//	repositories/<name>/
//	  _layers/<alg>/<hex>              empty: the repository may read the blob
//	  _manifests/revisions/<alg>/<hex> {"mediaType":..,"subject":..}: a manifest
//	                                   of the repository (bytes are the blob)
//	  _manifests/tags/<tag>            the tagged manifest's digest
//	  _referrers/<alg>/<hex>/<alg>-<hex>
//	                                   descriptor of a manifest whose subject is
//	                                   the first digest
//
// Upload state lives in storage, not in the process: several registry
// processes over the same storage can serve the chunks of one upload. Each
// chunk is appended to data/<id> and the sha256 state saved, so the digest is
// verified while the bytes stream in; finishing writes the blob link. Two
// pushes of the same blob both verify their bytes and either link wins.
// One request at a time writes an upload (uploadlock.go); the objects of
// garbage collection are drawn in gcstate.go.
package server
