"""Brand and topic matching: whole words, any case, any accents; other languages that name an Italian brand."""

from activations.listening.matching import Vocabulary, fold
from activations.listening.sentiment import language


def test_names_match_whole_words_in_any_case_and_accent():
    brands = Vocabulary({"Casa Lume": ["Casa Lume", "#casalume", "casalume.it"], "Lanterna Living": ["Lanterna Living"]})
    assert brands.found("CASA LUMÉ, che delusione") == ["Casa Lume"]
    assert brands.found("ordinato su casalume.it, arrivato!") == ["Casa Lume"]
    assert brands.found("#CasaLume vs lanterna   living") == ["Casa Lume", "Lanterna Living"]
    assert brands.found("casalumen, Lume, Casa Lumex, #casalumeoutlet") == []
    assert fold("Qualità  CAFFÈ") == "qualita caffe"
    topics = Vocabulary({"quality": ["qualità", "quality"], "service": ["customer service"]})
    assert topics.found("ottima qualita") == ["quality"]
    assert topics.found("Customer Service!") == ["service"]


def test_a_longer_post_in_another_language_is_not_italian_for_naming_an_italian_brand():
    assert language("Casa Lume abre una tienda en Madrid este mes") is None
    assert language("Casa Lume ouvre un nouveau magasin à Paris avec des lampes") is None
    assert language("scarpe comode") == "it"  # short posts still get the benefit of the doubt
