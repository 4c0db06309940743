/* The least any PKCS#11 client can do for one ECDSA signature on SoftHSM (benches/pkcs11-sign.sh
 * times it beside pkcs11-tool as the floor of the one-shot comparison): load the module,
 * C_Initialize, find the token by label, open a session, log in, find the private key with
 * CKA_ID 01, sign a 32-byte digest with a buffer large enough for the answer, write the
 * signature (as DER), log out, close, C_Finalize. 13 calls; no OpenSSL, no audit record, no error text.
 *
 *   cc -O2 -I/usr/include/p11-kit-1 -o p11-floor benches/lib/p11-floor.c -ldl
 *   p11-floor LABEL DIGEST_FILE SIGNATURE_FILE PIN */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <p11-kit/pkcs11.h>
int main(int argc, char **argv) {
    if (argc != 5) return 10;
    const char *label = argv[1], *pin = argv[4];
    void *h = dlopen("/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW);
    if (!h) return 1;
    CK_C_GetFunctionList g = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR f; g(&f);
    if (f->C_Initialize(NULL)) return 2;
    CK_SLOT_ID slots[16]; CK_ULONG n = 16;
    if (f->C_GetSlotList(CK_TRUE, slots, &n)) return 3;
    CK_SLOT_ID slot = (CK_SLOT_ID)-1;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti; if (f->C_GetTokenInfo(slots[i], &ti)) continue;
        size_t l = strlen(label);
        if (memcmp(ti.label, label, l) == 0 && (l == 32 || ti.label[l] == ' ')) { slot = slots[i]; break; }
    }
    if (slot == (CK_SLOT_ID)-1) return 4;
    CK_SESSION_HANDLE s;
    if (f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) return 5;
    if (f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) return 6;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY; CK_BYTE id = 1;
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, &id, 1}};
    CK_OBJECT_HANDLE k; CK_ULONG found = 0;
    f->C_FindObjectsInit(s, t, 2); f->C_FindObjects(s, &k, 1, &found); f->C_FindObjectsFinal(s);
    if (found != 1) return 7;
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    CK_BYTE dg[32]; FILE *in = fopen(argv[2], "rb"); if (!in || fread(dg, 1, 32, in) != 32) return 8; fclose(in);
    CK_BYTE sig[72]; CK_ULONG sl = sizeof sig;
    if (f->C_SignInit(s, &m, k) || f->C_Sign(s, dg, 32, sig, &sl)) return 9;
    if (sl != 64) return 11;
    /* r ‖ s as the ECDSA-Sig-Value DER that openssl verifies. */
    CK_BYTE der[72]; size_t dl = 2;
    for (int half = 0; half < 2; half++) {
        const CK_BYTE *v = sig + 32 * half; size_t vl = 32;
        while (vl > 1 && v[0] == 0) { v++; vl--; }
        int pad = v[0] & 0x80 ? 1 : 0;
        der[dl++] = 0x02; der[dl++] = (CK_BYTE)(vl + pad);
        if (pad) der[dl++] = 0;
        memcpy(der + dl, v, vl); dl += vl;
    }
    der[0] = 0x30; der[1] = (CK_BYTE)(dl - 2);
    FILE *out = fopen(argv[3], "wb"); if (!out) return 12; fwrite(der, 1, dl, out); fclose(out);
    f->C_Logout(s); f->C_CloseSession(s); f->C_Finalize(NULL);
    return 0;
}
